/**
 * `sidecarless policy check`: judge one request against a policy file, offline.
 *
 *   sidecarless policy check --policy FILE --from ID|unauthenticated --method M --path P
 *     [--host H] [--port N] [--header k=v]... [--source-ip IP] [--sni NAME]
 *     [--default-policy X] [--trust-domain TD] [--namespace NS] [--label k=v]...
 *     [--router any|express|fastify[:flags]|exact]
 *
 * Prints `ALLOW <rule>` or `DENY <rule>` (plus `audit: …` when audit rules matched). Exit 0 allow,
 * 1 deny (also for a malformed target or Host: `DENY (malformed …)`, the mesh's 400), 2 usage or
 * policy error. `--router` judges with the semantics of the router that serves the app, as the
 * mesh does at run time (policy/router-semantics.ts).
 */
import { isDnsName, parseDnsIdentity } from '../identity/dns-id.js';
import { peerIdentityOf } from '../identity/name.js';
import { PolicyError } from '../errors.js';
import type { PeerIdentity } from '../identity/peer-identity.js';
import { hostProblem, sameAuthority } from '../policy/authority.js';
import { alikeOf, routingNamed } from '../policy/router-semantics.js';
import { compilePolicy, DEFAULT_POLICIES, type DefaultPolicy, loadPolicy, normalizeTarget } from '../policy/index.js';
import { UsageError, defineCommand } from './args.js';
import { readText } from './files.js';

function pairs(list: readonly string[], what: string): Array<[string, string]> {
  return list.map((kv) => {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${what} must be k=v, got "${kv}"`);
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  });
}

/**
 * Parses `--from`: a SPIFFE ID (`spiffe://td/ns/x/sa/y`, namespace and SA derived), a DNS-like
 * identity (Linkerd's `sa.ns.serviceaccount.identity.linkerd.td`, parts derived), or `unauthenticated`.
 */
function peerOf(from: string): PeerIdentity | null {
  if (from === 'unauthenticated') return null;
  if (!from.startsWith('spiffe://') && isDnsName(from)) return peerIdentityOf(parseDnsIdentity(from));
  const m = /^spiffe:\/\/([a-z0-9._-]+)(\/[^?#]*)$/.exec(from);
  if (!m || m[2] === '/') throw new UsageError(`--from must be a SPIFFE ID (spiffe://trust-domain/path), a DNS-like identity (sa.ns.serviceaccount.identity.linkerd.cluster.local) or "unauthenticated", got "${from}"`);
  const td = m[1]!;
  const k8s = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(m[2]!);
  const base = { id: from, kind: 'spiffe' as const, spiffeId: from, trustDomain: td };
  return k8s ? { ...base, namespace: k8s[1]!, serviceAccount: k8s[2]! } : base;
}

/** Loads and compiles the policy file; a PolicyError names the file. */
async function compiled(file: string, options: Parameters<typeof compilePolicy>[1]) {
  const text = await readText(file);
  try {
    return compilePolicy(loadPolicy(text, { file }), options);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    // loadPolicy's messages carry file:line:col; compile errors name the path only.
    throw e.message.includes(file) ? e : new PolicyError(`invalid policy ${file}: ${e.message}`, e.issues);
  }
}

export const policyCheckCommand = defineCommand({
  name: 'policy check',
  summary: 'judge one request against a policy file offline: ALLOW/DENY and the deciding rule',
  description:
    'Judges one request against a policy file (native, Istio AuthorizationPolicy or Linkerd documents)\n' +
    'exactly as the mesh would, and prints ALLOW or DENY with the deciding rule (and audit rules that\n' +
    'matched). The path is normalized as the mesh normalizes it; a malformed target is a DENY.',
  options: {
    policy: { type: 'string', required: true, value: 'FILE', help: 'the policy file (YAML or JSON)' },
    from: { type: 'string', required: true, value: 'ID', help: 'the caller: a SPIFFE ID, or "unauthenticated"' },
    method: { type: 'string', required: true, value: 'M', help: 'the request method, as sent (GET, POST, ...)' },
    path: { type: 'string', required: true, value: 'P', help: 'the request target (path and query)' },
    host: { type: 'string', value: 'H', help: 'the Host header (default localhost)' },
    port: { type: 'string', value: 'N', help: 'the server port (default 443)' },
    header: { type: 'string', multiple: true, value: 'k=v', help: 'a request header' },
    'source-ip': { type: 'string', value: 'IP', help: 'the client address (default 127.0.0.1)' },
    sni: { type: 'string', value: 'NAME', help: 'the TLS server name the client sent' },
    'default-policy': { type: 'string', value: 'X', help: `when no rule decides: ${DEFAULT_POLICIES.join(', ')} (default all-authenticated)` },
    'trust-domain': { type: 'string', value: 'TD', help: "the server's trust domain (default cluster.local)" },
    namespace: { type: 'string', value: 'NS', help: "the server's namespace (default default)" },
    label: { type: 'string', multiple: true, value: 'k=v', help: "a label of the server workload (Istio selector, Linkerd podSelector)" },
    router: {
      type: 'string',
      value: 'R',
      help: 'the router serving the app: any (a plain request handler, the default: every router\'s look-alike spellings), express, fastify, or fastify:FLAGS with FLAGS from case-insensitive, semicolon; exact judges the policy as written',
    },
  },
  exits: '0 ALLOW, 1 DENY, 2 usage error or a policy file that cannot be read or loaded (never mistaken for a DENY)',
  failureExit: 2,
  examples: ['sidecarless policy check --policy payments.yaml --from spiffe://cluster.local/ns/default/sa/orders --method POST --path /charge'],
  async run(v, io) {
    const defaultPolicy = (v['default-policy'] ?? 'all-authenticated') as DefaultPolicy;
    if (!DEFAULT_POLICIES.includes(defaultPolicy)) {
      throw new UsageError(`--default-policy must be one of ${DEFAULT_POLICIES.join(', ')}, got "${defaultPolicy}"`);
    }
    const portText = v.port ?? '443';
    const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) throw new UsageError(`--port must be 1-65535, got "${portText}"`);
    const peer = peerOf(v.from!);
    const headers = new Map(pairs(v.header ?? [], 'header').map(([k, val]) => [k.toLowerCase(), val] as const));
    const labels = Object.fromEntries(pairs(v.label ?? [], 'label'));
    const policy = await compiled(v.policy!, {
      defaultPolicy,
      trustDomain: v['trust-domain'] ?? 'cluster.local',
      namespace: v.namespace ?? 'default',
      labels,
    });
    const routing = routingNamed(v.router ?? 'any');
    if (typeof routing === 'string') throw new UsageError(`--router: ${routing}`);
    const method = v.method!;
    const target = normalizeTarget(v.path!, method);
    if (!target.ok) {
      io.stdout(`DENY (malformed target: ${target.reason})`);
      return 1;
    }
    const host = v.host ?? headers.get('host') ?? target.authority ?? 'localhost';
    const bad = hostProblem(host) ?? (target.authority !== undefined ? hostProblem(target.authority) : undefined);
    if (bad || (target.authority !== undefined && !sameAuthority(target.authority, host))) {
      io.stdout(`DENY (malformed host: ${bad ?? `the target's authority "${target.authority}" is not the Host "${host}"`})`);
      return 1;
    }
    const alike = alikeOf(target.path, method, routing);
    const d = policy.evaluate({
      peer,
      sourceIp: v['source-ip'] ?? '127.0.0.1',
      method,
      path: target.path,
      host: target.authority ?? host,
      port,
      ...(v.sni !== undefined ? { sni: v.sni } : {}),
      header: (name) => headers.get(name),
      ...(alike && { alike }),
    });
    let line = `${d.allowed ? 'ALLOW' : 'DENY'} ${d.rule}${d.server ? ` (server ${d.server})` : ''}`;
    if (d.audit.length) line += `\naudit: ${d.audit.join(', ')}`;
    io.stdout(line);
    return d.allowed ? 0 : 1;
  },
});
