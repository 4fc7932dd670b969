/**
 * Policy evaluation cost: 100 rules over 1,000 principals, against an evaluator that always allows
 * (same requests, same run). Goal: median ≤ 2 µs per decision, both for rules that list exact
 * SPIFFE IDs and for the same kind of policy written with wildcard identity patterns (identity
 * prefixes and suffixes, namespaces, service accounts `ns/*`, trust domains).
 *   node --import tsx bench/policy.ts [--quick]
 */
import { pathToFileURL } from 'node:url';
import { ANY_ROUTING, alikeOf } from '../src/policy/router-semantics.js';
import { compilePolicy, type PolicyInput, type PolicyRequest } from '../src/policy/index.js';

const TD = 'cluster.local';
type Source = NonNullable<NonNullable<PolicyInput['rules']>[number]['from']>;

/** 90 allow and 10 deny rules; `from` is given per rule. */
function rulesWith(from: (r: number) => Source): PolicyInput {
  const rules: NonNullable<PolicyInput['rules']> = [];
  for (let r = 0; r < 100; r++) {
    if (r % 10 === 9) {
      rules.push({ name: `deny-${r}`, action: 'deny', from: from(r), to: { paths: [`/admin/${r}/*`] } });
    } else {
      rules.push({
        name: `allow-${r}`,
        action: 'allow',
        from: from(r),
        to: [{ methods: ['GET', 'HEAD'], paths: [`/api/v1/r${r}/*`, '/users/{id}/orders'] }, { methods: ['POST'], paths: [`/api/v1/r${r}/submit`] }],
      });
    }
  }
  return { rules };
}

/** Each rule lists 10 principals: exact IDs, or (`offBoundary`) the same IDs as `…/sa/svc-123*` prefixes. */
function buildPolicy(offBoundary = false): PolicyInput {
  return rulesWith((r) => ({ identities: Array.from({ length: 10 }, (_, i) => `spiffe://${TD}/ns/ns${r % 20}/sa/svc-${r * 10 + i}${offBoundary ? '*' : ''}`) }));
}

// ---- wildcard policy: 1,000 principals = 50 namespaces × 20 service accounts; every 10th in a partner trust domain.
const wildPeer = (p: number) => {
  const ns = `team-${p % 50}`;
  const sa = `svc-${Math.floor(p / 50)}`;
  const td = p % 10 === 4 ? `partner-${p % 20}.example` : TD;
  const id = `spiffe://${td}/ns/${ns}/sa/${sa}`;
  return { id, kind: 'spiffe' as const, spiffeId: id, trustDomain: td, namespace: ns, serviceAccount: sa };
};

/** Rule r constrains the source by kind r % 5: identity prefix, identity suffix, namespace, service accounts, trust domain. */
function wildSource(r: number): Source {
  switch (r % 5) {
    case 0:
      return { identities: [`spiffe://${TD}/ns/team-${r % 50}/*`, `spiffe://${TD}/ns/team-${(r + 25) % 50}/*`] };
    case 1:
      return { identities: [`*/sa/svc-${r % 20}`] };
    case 2:
      return { namespaces: [`team-${r % 50}`, `team-${(r + 7) % 50}`] };
    case 3:
      return { serviceAccounts: [`team-${r % 50}/*`, `team-${(r + 11) % 50}/svc-3`] };
    default:
      return { trustDomains: [`partner-${r % 20}.example`] };
  }
}

/** Whether wildcard rule `r`'s source admits principal `p` (to aim 60% of requests at a rule that allows). */
function wildAdmits(r: number, p: number): boolean {
  const peer = wildPeer(p);
  const ns = Number(peer.namespace.slice(5));
  switch (r % 5) {
    case 0:
      return peer.trustDomain === TD && (ns === r % 50 || ns === (r + 25) % 50);
    case 1:
      return peer.serviceAccount === `svc-${r % 20}`;
    case 2:
      return ns === r % 50 || ns === (r + 7) % 50;
    case 3:
      return peer.trustDomain === TD && (ns === r % 50 || (ns === (r + 11) % 50 && peer.serviceAccount === 'svc-3'));
    default:
      return peer.trustDomain === `partner-${r % 20}.example`;
  }
}

function rng(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
}

function request(peer: PolicyRequest['peer'], path: string): PolicyRequest {
  const headers: Record<string, string> = { host: 'api.local' };
  return { peer, sourceIp: '10.0.0.1', method: 'GET', path, host: 'api.local', port: 8443, header: (h) => headers[h] };
}

/** Requests of the exact-ID workload; every request has its own peer object. */
function buildRequests(n: number): PolicyRequest[] {
  const out: PolicyRequest[] = [];
  const rnd = rng(42);
  for (let i = 0; i < n; i++) {
    const p = Math.floor(rnd() * 1000);
    const r = Math.floor(p / 10);
    const spiffeId = `spiffe://${TD}/ns/ns${r % 20}/sa/svc-${p}`;
    const kind = rnd();
    const path = kind < 0.6 ? `/api/v1/r${r}/items` : kind < 0.8 ? '/users/7/orders' : `/api/v1/r${(r + 1) % 100}/items`;
    out.push(request({ id: spiffeId, kind: 'spiffe', spiffeId, trustDomain: TD, namespace: `ns${r % 20}`, serviceAccount: `svc-${p}` }, path));
  }
  return out;
}

const ADMITTING: number[][] = Array.from({ length: 1000 }, (_, p) => Array.from({ length: 100 }, (_, r) => r).filter((r) => r % 10 !== 9 && wildAdmits(r, p)));

/** Requests of the wildcard workload; every request has its own peer object (frozen, like the mesh's). */
function buildWildRequests(n: number, seed = 43): PolicyRequest[] {
  const out: PolicyRequest[] = [];
  const rnd = rng(seed);
  for (let i = 0; i < n; i++) {
    const p = Math.floor(rnd() * 1000);
    const ok = ADMITTING[p]!;
    const kind = rnd();
    const r = kind < 0.6 && ok.length > 0 ? ok[Math.floor(rnd() * ok.length)]! : Math.floor(rnd() * 100);
    const path = kind < 0.8 ? `/api/v1/r${r}/items` : kind < 0.9 ? '/users/7/orders' : `/admin/${r}/x`;
    out.push(request(Object.freeze(wildPeer(p)), path));
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const EXACT = 'compiled (100 rules, 1000 principals)';
const WILD = 'compiled, wildcard identities (100 rules, 1000 principals)';
const ANY = 'compiled, with a plain handler\'s alike spellings (alikeOf + evaluate)';

/** Runs the benchmark; returns one row per evaluator plus the ratio. */
export async function benchPolicy(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const compiled = compilePolicy(buildPolicy(), { trustDomain: TD, namespace: 'default' });
  // The same rules with `…/sa/svc-123*` prefixes (not at a '/' boundary): keyed by `…/sa/`, then
  // filtered per peer.
  const offBoundary = compilePolicy(buildPolicy(true), { trustDomain: TD, namespace: 'default' });
  const wild = compilePolicy(rulesWith(wildSource), { trustDomain: TD, namespace: 'default' });
  const requests = buildRequests(4096);
  const wildRequests = buildWildRequests(4096);
  const perRound = opts.quick ? 20_000 : 400_000;
  const rounds = opts.quick ? 3 : 9;
  // Cold: every decision sees a peer object never seen before (no per-peer cache hit). Informational:
  // the mesh reuses one peer object per connection.
  const coldPerRound = opts.quick ? 5_000 : 50_000;
  const allowAll = { evaluate: (_r: PolicyRequest) => ({ allowed: true }) };
  const evaluators: Array<[string, (r: PolicyRequest) => { allowed: boolean }, 'exact' | 'wild' | 'cold']> = [
    ['always-allow', (r) => allowAll.evaluate(r), 'exact'],
    [EXACT, (r) => compiled.evaluate(r), 'exact'],
    ['compiled, off-boundary identity prefixes', (r) => offBoundary.evaluate(r), 'exact'],
    [WILD, (r) => wild.evaluate(r), 'wild'],
    ['compiled, wildcard identities, new peer object per decision', (r) => wild.evaluate(r), 'cold'],
    // What the gate does for a plain request handler (any router's alike spellings), alikeOf
    // included; it computes them only when the policy has a rule they can change (usesAlike).
    [ANY, (r) => compiled.evaluate({ ...r, alike: alikeOf(r.path, r.method, ANY_ROUTING) }), 'exact'],
  ];
  const results = new Map<string, number[]>();
  const allowed = new Map<string, number>();
  let coldSeed = 1000;
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn, workload] of evaluators) {
      const cold = workload === 'cold' ? buildWildRequests(coldPerRound, coldSeed++) : undefined;
      const reqs = workload === 'wild' ? wildRequests : requests;
      let yes = 0;
      const t0 = process.hrtime.bigint();
      if (cold !== undefined) {
        for (let i = 0; i < cold.length; i++) if (fn(cold[i]!).allowed) yes++;
      } else {
        for (let i = 0; i < perRound; i++) if (fn(reqs[i & 4095]!).allowed) yes++;
      }
      const ns = Number(process.hrtime.bigint() - t0) / (cold?.length ?? perRound);
      allowed.set(name, (allowed.get(name) ?? 0) + yes);
      if (round > 0) (results.get(name) ?? results.set(name, []).get(name)!).push(ns);
    }
  }
  const base = median(results.get('always-allow')!);
  const rows: Array<Record<string, number | string>> = evaluators.map(([name]) => {
    const m = median(results.get(name)!);
    return { evaluator: name, 'median ns/decision': Math.round(m * 10) / 10, 'decisions/s': Math.round(1e9 / m), 'ratio vs always-allow': Math.round((m / base) * 10) / 10 };
  });
  for (const [name] of evaluators) {
    if (name !== 'always-allow' && !allowed.get(name)) throw new Error(`${name}: requests were never allowed: the workload is wrong`);
  }
  for (const [label, name] of [['exact IDs', EXACT], ['wildcards', WILD]] as const) {
    const m = median(results.get(name)!);
    rows.push({ evaluator: `goal (${label}): median ≤ 2000 ns`, 'median ns/decision': Math.round(m), 'decisions/s': '', 'ratio vs always-allow': m <= 2000 ? 'met' : 'MISSED' });
  }
  return { name: 'policy', rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchPolicy({ quick: process.argv.includes('--quick') });
  console.log(r.name);
  console.table(r.rows);
}
