// The compiled evaluator agrees with a plain, obviously-correct reference on random policies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, type DefaultPolicy, type PolicyRequest } from '../../src/policy/index.js';
import { req } from './helpers.js';
import { seededRandom } from '../../src/random.js';

const prng = seededRandom;

const IDS = [
  'spiffe://cluster.local/ns/a/sa/b',
  'spiffe://cluster.local/ns/a/sa/bb',
  'spiffe://cluster.local/ns/x/sa/b',
  'spiffe://cluster.local/ns/ab/sa/b',
  'spiffe://other/ns/a/sa/b',
  'spiffe://other/ns/x/sa/bb',
  'spiffe://cluster.local/workload/b',
  null,
];
// Exact, prefix and suffix patterns at and off '/' boundaries: the rule index keys some, scans the rest.
const ID_PATTERNS = [
  '*',
  'spiffe://cluster.local/ns/a/sa/b',
  'spiffe://cluster.local/ns/a/*',
  'spiffe://cluster.local/ns/a*',
  'spiffe://cluster.local/ns/a/sa/b*',
  'spiffe://cluster.local/*',
  'spiffe://*',
  '*/sa/b',
  '*/sa/bb',
  '*a/sa/b',
  '*b',
  'spiffe://other/*',
  'spiffe://other/ns/x/sa/bb',
];
const TRUST_DOMAINS = ['cluster.local', 'other', 'third'];
const SERVICE_ACCOUNTS = ['a/b', 'a/*', 'x/b', 'ab/*', 'x/bb'];
const PATHS = ['/', '/admin', '/admin/x', '/public/a', '/users/1/orders', '/users/1/2/orders', '/a.json', '/Admin'];
const PATH_PATTERNS = ['/admin', '/admin*', '/admin/*', '/public/*', '*.json', '*', '/users/{id}/orders', '/users/{**}', '/'];
const METHODS = ['GET', 'POST', 'get', 'DELETE'];
const IPS = ['10.0.0.1', '10.9.0.1', '192.168.1.1', '203.0.113.5', '::ffff:10.0.0.1', '2001:db8::1', '::1'];
const CIDRS: Array<[string, (ip: string) => boolean]> = [
  ['10.0.0.0/8', (ip) => ip.startsWith('10.') || ip.startsWith('::ffff:10.')],
  ['10.9.0.0/16', (ip) => ip.startsWith('10.9.') || ip.startsWith('::ffff:10.9.')],
  ['192.168.0.0/16', (ip) => ip.startsWith('192.168.')],
  ['2001:db8::/32', (ip) => ip.startsWith('2001:db8:')],
  ['::1', (ip) => ip === '::1'],
];
const PORTS = [80, 8443, 9090];
const HOSTS = ['api.example.com', 'API.example.com:8443', 'x.internal', 'example.com'];
const HOST_PATTERNS = ['api.example.com', '*.internal', '*.example.com', 'example.com', '*'];
const TENANTS = ['acme', 'beta-1', undefined];
const TENANT_PATTERNS = ['acme', 'beta-*', '*'];
const NAMESPACES = ['a', 'x', 'ab', 'a*', '*b', '*'];

// ---- reference ---------------------------------------------------------------------------
function pat(p: string, v: string | undefined): boolean {
  if (v === undefined) return false;
  if (p === '*') return true;
  if (p.includes('{')) {
    const re = '^' + p.split('/').map((s) => (s === '{**}' ? '[^/].*' : s.startsWith('{') ? '[^/]+' : s.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))).join('/') + '$';
    return new RegExp(re).test(v);
  }
  if (p.startsWith('*')) return v.endsWith(p.slice(1));
  if (p.endsWith('*')) return v.startsWith(p.slice(0, -1));
  return v === p;
}
const anyPat = (ps: string[], v: string | undefined) => ps.some((p) => pat(p, v));
const host = (h: string) => h.split(':')[0]!.toLowerCase();

type Clause = Record<string, unknown>;
function refClause(c: Clause, r: PolicyRequest): boolean {
  const id = r.peer?.spiffeId;
  const ns = r.peer?.namespace;
  const td = r.peer?.trustDomain;
  const sa = (list: string[]) =>
    r.peer !== null && td === 'cluster.local' && ns !== undefined && r.peer.serviceAccount !== undefined && (list.includes(`${ns}/${r.peer.serviceAccount}`) || list.includes(`${ns}/*`));
  const checks: Array<[string, () => boolean]> = [
    ['identities', () => id !== undefined && anyPat(c.identities as string[], id)],
    ['notIdentities', () => !(id !== undefined && anyPat(c.notIdentities as string[], id))],
    ['namespaces', () => ns !== undefined && anyPat(c.namespaces as string[], ns)],
    ['notNamespaces', () => !(ns !== undefined && anyPat(c.notNamespaces as string[], ns))],
    ['trustDomains', () => td !== undefined && (c.trustDomains as string[]).includes(td)],
    ['notTrustDomains', () => !(td !== undefined && (c.notTrustDomains as string[]).includes(td))],
    ['serviceAccounts', () => sa(c.serviceAccounts as string[])],
    ['notServiceAccounts', () => !sa(c.notServiceAccounts as string[])],
    ['unauthenticated', () => (c.unauthenticated as boolean) === (r.peer === null)],
    ['ipBlocks', () => (c.ipBlocks as string[]).some((b) => CIDRS.find(([x]) => x === b)![1](r.sourceIp))],
    ['notIpBlocks', () => !(c.notIpBlocks as string[]).some((b) => CIDRS.find(([x]) => x === b)![1](r.sourceIp))],
    ['methods', () => (c.methods as string[]).includes(r.method)],
    ['notMethods', () => !(c.notMethods as string[]).includes(r.method)],
    ['paths', () => anyPat(c.paths as string[], r.path)],
    ['notPaths', () => !anyPat(c.notPaths as string[], r.path)],
    ['ports', () => (c.ports as number[]).includes(r.port)],
    ['hosts', () => anyPat(c.hosts as string[], host(r.host))],
    ['headers', () => anyPat((c.headers as Record<string, string[]>)['x-tenant']!, r.header('x-tenant'))],
    ['notHeaders', () => !anyPat((c.notHeaders as Record<string, string[]>)['x-tenant']!, r.header('x-tenant'))],
  ];
  return checks.every(([k, f]) => !(k in c) || f());
}
interface RefRule { name: string; action: 'allow' | 'deny' | 'audit'; from?: Clause[]; to?: Clause[]; when?: Clause[] }
function refMatches(rule: RefRule, r: PolicyRequest): boolean {
  const any = (cs: Clause[] | undefined) => cs === undefined || cs.some((c) => refClause(c, r));
  return any(rule.from) && any(rule.to) && (rule.when ?? []).every((c) => refClause(c, r));
}
function refDecide(rules: RefRule[], dp: DefaultPolicy, r: PolicyRequest): { allowed: boolean; rule: string; audit: string[] } {
  const audit = rules.filter((x) => x.action === 'audit' && refMatches(x, r)).map((x) => x.name);
  const deny = rules.find((x) => x.action === 'deny' && refMatches(x, r));
  if (deny) return { allowed: false, rule: deny.name, audit };
  const allow = rules.find((x) => x.action === 'allow' && refMatches(x, r));
  if (allow) return { allowed: true, rule: allow.name, audit };
  if (rules.some((x) => x.action === 'allow')) return { allowed: false, rule: 'no-allow-match', audit };
  const inCluster = /^(10\.|192\.168\.|::ffff:10\.|::1$)/.test(r.sourceIp);
  const allowed = {
    deny: false,
    'all-unauthenticated': true,
    audit: true,
    'all-authenticated': r.peer !== null,
    'cluster-authenticated': r.peer !== null && r.peer.trustDomain === 'cluster.local',
    'cluster-unauthenticated': inCluster,
  }[dp];
  return { allowed, rule: `default:${dp}`, audit: dp === 'audit' ? [...audit, 'default:audit'] : audit };
}

// ---- generators --------------------------------------------------------------------------
const PEERS = new Map<string, NonNullable<PolicyRequest['peer']>>();

function gen(rnd: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const some = <T>(xs: readonly T[]): T[] => [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 2) }, () => pick(xs)))];
  const source = (): Clause => {
    const c: Clause = {};
    if (rnd() < 0.4) c.identities = some(ID_PATTERNS);
    if (rnd() < 0.15) c.notIdentities = some(ID_PATTERNS);
    if (rnd() < 0.2) c.namespaces = some(NAMESPACES);
    if (rnd() < 0.08) c.notNamespaces = some(NAMESPACES);
    if (rnd() < 0.15) c.trustDomains = some(TRUST_DOMAINS);
    if (rnd() < 0.08) c.notTrustDomains = some(TRUST_DOMAINS);
    if (rnd() < 0.15) c.serviceAccounts = some(SERVICE_ACCOUNTS);
    if (rnd() < 0.08) c.notServiceAccounts = some(SERVICE_ACCOUNTS);
    if (rnd() < 0.1) c.unauthenticated = rnd() < 0.5;
    if (rnd() < 0.2) c.ipBlocks = some(CIDRS.map(([x]) => x));
    if (rnd() < 0.1) c.notIpBlocks = some(CIDRS.map(([x]) => x));
    return c;
  };
  const operation = (): Clause => {
    const c: Clause = {};
    if (rnd() < 0.4) c.methods = some(['GET', 'POST', 'DELETE']);
    if (rnd() < 0.1) c.notMethods = some(['GET', 'POST']);
    if (rnd() < 0.5) c.paths = some(PATH_PATTERNS);
    if (rnd() < 0.15) c.notPaths = some(PATH_PATTERNS);
    if (rnd() < 0.2) c.ports = some(PORTS);
    if (rnd() < 0.2) c.hosts = some(HOST_PATTERNS);
    return c;
  };
  const condition = (): Clause => {
    const k = rnd();
    if (k < 0.35) return { headers: { 'x-tenant': some(TENANT_PATTERNS) } };
    if (k < 0.7) return { notHeaders: { 'x-tenant': some(TENANT_PATTERNS) } };
    return { ...source(), ...(rnd() < 0.5 ? operation() : {}) }; // source fields in `when` constrain the peer too
  };
  // Up to 11 rules, so peers' candidate lists merge several index buckets.
  const rules: RefRule[] = Array.from({ length: Math.floor(rnd() * (rnd() < 0.5 ? 6 : 12)) }, (_, i) => {
    const r: RefRule = { name: `r${i}`, action: pick(['allow', 'allow', 'deny', 'audit'] as const) };
    if (rnd() < 0.6) r.from = Array.from({ length: 1 + Math.floor(rnd() * 2) }, source);
    if (rnd() < 0.6) r.to = Array.from({ length: 1 + Math.floor(rnd() * 2) }, operation);
    if (rnd() < 0.2) r.when = [condition()];
    return r;
  });
  const request = () => {
    const tenant = pick(TENANTS);
    const r = req({ from: pick(IDS), ip: pick(IPS), method: pick(METHODS), path: pick(PATHS), port: pick(PORTS), host: pick(HOSTS), headers: tenant === undefined ? {} : { 'x-tenant': tenant } });
    // Peer objects are reused, frozen, as the mesh reuses them per connection: the per-peer
    // candidate cache is hit across requests and policies.
    if (r.peer === null || rnd() < 0.2) return r;
    let peer = PEERS.get(r.peer.id);
    if (peer === undefined) PEERS.set(r.peer.id, (peer = Object.freeze({ ...r.peer })));
    return { ...r, peer };
  };
  return { rules, request, dp: pick(['all-authenticated', 'deny', 'cluster-authenticated', 'cluster-unauthenticated', 'all-unauthenticated', 'audit'] as const) };
}

// POLICY_PROPERTY_CASES=100000 for a longer run while developing.
const CASES = Number(process.env.POLICY_PROPERTY_CASES ?? 4000);

test(`compiled evaluator = reference evaluator on ${CASES} random policies × 10 requests`, () => {
  const rnd = prng(0x5eed);
  let allowed = 0;
  let total = 0;
  for (let i = 0; i < CASES; i++) {
    const { rules, request, dp } = gen(rnd);
    const compiled = compilePolicy({ rules }, { trustDomain: 'cluster.local', namespace: 'default', defaultPolicy: dp });
    for (let j = 0; j < 10; j++) {
      const r = request();
      const want = refDecide(rules, dp, r);
      const got = compiled.evaluate(r);
      assert.deepEqual(
        { allowed: got.allowed, rule: got.rule, audit: [...got.audit] },
        want,
        `case ${i}/${j}: ${JSON.stringify({ rules, dp, peer: r.peer?.spiffeId, ip: r.sourceIp, method: r.method, path: r.path, port: r.port, host: r.host, tenant: r.header('x-tenant') })}`,
      );
      total++;
      if (got.allowed) allowed++;
    }
  }
  // Both outcomes are well represented, so the comparison means something.
  assert.ok(allowed > total * 0.2 && allowed < total * 0.8, `${allowed}/${total} allowed`);
});
