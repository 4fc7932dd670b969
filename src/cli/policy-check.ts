/**
 * `sidecarless policy check`: judge one request against a policy file, offline.
 *
 *   sidecarless policy check --policy FILE --from ID|unauthenticated --method M --path P
 *     [--host H] [--port N] [--header k=v]... [--source-ip IP] [--sni NAME]
 *     [--default-policy X] [--trust-domain TD] [--namespace NS] [--label k=v]...
 *
 * Prints `ALLOW <rule>` or `DENY <rule>` (plus `audit: …` when audit rules matched). Exit 0 allow,
 * 1 deny (also for a malformed target: `DENY (malformed target: …)`), 2 usage or policy error.
 */
import { PolicyError } from '../errors.js';
import type { PeerIdentity } from '../identity/peer-identity.js';
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

/** Parses `--from`: a SPIFFE ID (`spiffe://td/ns/x/sa/y`, namespace and SA derived) or `unauthenticated`. */
function peerOf(from: string): PeerIdentity | null {
  if (from === 'unauthenticated') return null;
  const m = /^spiffe:\/\/([a-z0-9._-]+)(\/[^?#]*)$/.exec(from);
  if (!m || m[2] === '/') throw new UsageError(`--from must be a SPIFFE ID (spiffe://trust-domain/path) or "unauthenticated", got "${from}"`);
  const td = m[1]!;
  const k8s = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(m[2]!);
  return k8s ? { spiffeId: from, trustDomain: td, namespace: k8s[1]!, serviceAccount: k8s[2]! } : { spiffeId: from, trustDomain: td };
}

/** Loads and compiles the policy file; a PolicyError names the file. */
async function compiled(file: string, options: Parameters<typeof compilePolicy>[1]) {
  const text = await readText(file);
  try {
    return compilePolicy(loadPolicy(text), options);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    throw e.issues.length ? new PolicyError(`invalid policy ${file}`, e.issues) : new PolicyError(`invalid policy ${file}: ${e.message}`);
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
    const method = v.method!;
    const target = normalizeTarget(v.path!, method);
    if (!target.ok) {
      io.stdout(`DENY (malformed target: ${target.reason})`);
      return 1;
    }
    const d = policy.evaluate({
      peer,
      sourceIp: v['source-ip'] ?? '127.0.0.1',
      method,
      path: target.path,
      host: target.authority ?? v.host ?? headers.get('host') ?? 'localhost',
      port,
      ...(v.sni !== undefined ? { sni: v.sni } : {}),
      header: (name) => headers.get(name),
    });
    let line = `${d.allowed ? 'ALLOW' : 'DENY'} ${d.rule}${d.server ? ` (server ${d.server})` : ''}`;
    if (d.audit.length) line += `\naudit: ${d.audit.join(', ')}`;
    io.stdout(line);
    return d.allowed ? 0 : 1;
  },
});
