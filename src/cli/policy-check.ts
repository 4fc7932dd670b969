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
import { SidecarlessError } from '../errors.js';
import type { PeerIdentity } from '../identity/peer-identity.js';
import { compilePolicy, DEFAULT_POLICIES, type DefaultPolicy, loadPolicy, normalizeTarget } from '../policy/index.js';

/** I/O the command needs, injected for tests. */
export interface PolicyCheckIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  readFile: (p: string) => Promise<string>;
}

const USAGE =
  'usage: sidecarless policy check --policy FILE --from ID|unauthenticated --method M --path P ' +
  '[--host H] [--port N] [--header k=v]... [--source-ip IP] [--sni NAME] [--default-policy X] ' +
  '[--trust-domain TD] [--namespace NS] [--label k=v]...';

const SINGLE = new Set(['policy', 'from', 'method', 'path', 'host', 'port', 'source-ip', 'sni', 'default-policy', 'trust-domain', 'namespace']);
const MULTI = new Set(['header', 'label']);

class UsageError extends Error {}

function parseArgs(args: readonly string[]): { one: Map<string, string>; many: Map<string, string[]> } {
  const one = new Map<string, string>();
  const many = new Map<string, string[]>([['header', []], ['label', []]]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}"`);
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else value = args[++i];
    if (!SINGLE.has(name) && !MULTI.has(name)) throw new UsageError(`unknown option --${name}`);
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (MULTI.has(name)) many.get(name)!.push(value);
    else if (one.has(name)) throw new UsageError(`--${name} given twice`);
    else one.set(name, value);
  }
  return { one, many };
}

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

/**
 * Runs `policy check` with `args` (the arguments after `policy check`).
 * @returns the exit code: 0 allow, 1 deny, 2 usage or policy error.
 */
export async function policyCheck(args: string[], io: PolicyCheckIo): Promise<number> {
  try {
    const { one, many } = parseArgs(args);
    for (const required of ['policy', 'from', 'method', 'path']) {
      if (!one.has(required)) throw new UsageError(`--${required} is required`);
    }
    const defaultPolicy = (one.get('default-policy') ?? 'all-authenticated') as DefaultPolicy;
    if (!DEFAULT_POLICIES.includes(defaultPolicy)) {
      throw new UsageError(`--default-policy must be one of ${DEFAULT_POLICIES.join(', ')}`);
    }
    const portText = one.get('port') ?? '443';
    const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) throw new UsageError(`--port must be 1-65535, got "${portText}"`);
    const peer = peerOf(one.get('from')!);
    const headers = new Map(pairs(many.get('header')!, 'header').map(([k, v]) => [k.toLowerCase(), v] as const));
    const labels = Object.fromEntries(pairs(many.get('label')!, 'label'));
    const file = one.get('policy')!;
    let text: string;
    try {
      text = await io.readFile(file);
    } catch (e) {
      io.stderr(`error: cannot read policy file ${file}: ${(e as Error).message}\n`);
      return 2;
    }
    const compiled = compilePolicy(loadPolicy(text), {
      defaultPolicy,
      trustDomain: one.get('trust-domain') ?? 'cluster.local',
      namespace: one.get('namespace') ?? 'default',
      labels,
    });
    const method = one.get('method')!;
    const target = normalizeTarget(one.get('path')!, method);
    if (!target.ok) {
      io.stdout(`DENY (malformed target: ${target.reason})\n`);
      return 1;
    }
    const sni = one.get('sni');
    const d = compiled.evaluate({
      peer,
      sourceIp: one.get('source-ip') ?? '127.0.0.1',
      method,
      path: target.path,
      host: target.authority ?? one.get('host') ?? headers.get('host') ?? 'localhost',
      port,
      ...(sni !== undefined ? { sni } : {}),
      header: (name) => headers.get(name),
    });
    let line = `${d.allowed ? 'ALLOW' : 'DENY'} ${d.rule}${d.server ? ` (server ${d.server})` : ''}`;
    if (d.audit.length) line += `\naudit: ${d.audit.join(', ')}`;
    io.stdout(line + '\n');
    return d.allowed ? 0 : 1;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(args.length === 0 ? `${USAGE}\n` : `error: ${e.message} (run without arguments for usage)\n`);
      return 2;
    }
    if (e instanceof SidecarlessError) {
      const issues = (e as { issues?: ReadonlyArray<{ path: string; message: string }> }).issues ?? [];
      const detail = issues.length ? issues.map((i) => `${i.path}: ${i.message}`).join('; ') : e.message;
      io.stderr(`error: invalid policy: ${detail}\n`);
      return 2;
    }
    throw e;
  }
}
