/**
 * Linkerd inbound authorizations (inbound.proto Authz) → native policy sources, with
 * linkerd2-proxy's meanings (linkerd/proxy/server-policy authz.rs):
 *
 * - an Authz allows a client whose address is in one of its `networks` (minus that network's
 *   `except`) AND whose connection satisfies its `authentication`; an Authz with no networks or no
 *   authentication is invalid (the proxy refuses the whole Server): refused here too;
 * - `unauthenticated` → any client (plaintext included);
 * - `meshTLS.unauthenticated` → any TLS client: here any authenticated peer (`*`), since the mesh's
 *   TLS clients are the ones with a verified certificate (stricter where a permissive server sees
 *   TLS without a client certificate);
 * - `meshTLS.identities`: exact names (a DNS-like name matches DNS peers, a SPIFFE ID SPIFFE peers)
 *   and suffixes, label-wise: parts [] → any authenticated peer; ["default", "serviceaccount", …]
 *   → `*.default.serviceaccount.…` (a DNS peer whose name ends in `.` + those labels). A name or a
 *   part that is not a valid identity (a `*`, upper case, an empty label) can match no client in
 *   Linkerd either; it is dropped with a note, never passed on as a pattern (where `*` would mean
 *   "anything");
 * - several Authz: an OR. Metadata and labels only name the rule.
 * Pure.
 */
import { isSpiffeId } from '../../../identity/spiffe-id.js';
import { parseCidr } from '../../../policy/cidr.js';
import type { Source } from '../../../policy/model.js';
import type { Authz, Network } from '../../../proto/linkerd/inbound.js';
import type { IPNetwork } from '../../../proto/linkerd/net.js';
import { ipToString } from '../../../proto/linkerd/net-addr.js';
import { isDnsName } from '../../../identity/dns-id.js';
import { isDnsLabels } from './endpoint.js';
import { type Findings, quote } from './findings.js';

export const MAX_AUTHZ_ENTRIES = 1000;

function cidrOf(n: IPNetwork | undefined, f: Findings, at: string): string | undefined {
  if (!n) {
    f.refuse(at, 'names no network');
    return undefined;
  }
  let ip: string;
  try {
    ip = ipToString(n.ip);
  } catch (e) {
    f.refuse(`${at}.ip`, (e as Error).message);
    return undefined;
  }
  const cidr = `${ip}/${n.prefixLen}`;
  const r = parseCidr(cidr);
  if (typeof r === 'string') {
    f.refuse(at, `${cidr}: ${r}`);
    return undefined;
  }
  return cidr;
}

/** The identity patterns of `meshTLS.identities` (empty: no client can match). */
function identityPatterns(ids: { identities: readonly { name: string }[]; suffixes: readonly { parts: readonly string[] }[] }, f: Findings, at: string): string[] {
  const out = new Set<string>();
  ids.identities.slice(0, MAX_AUTHZ_ENTRIES).forEach(({ name }, i) => {
    if (isDnsName(name) || isSpiffeId(name)) out.add(name);
    else f.note(`${at}.identities[${i}]`, `${quote(name)} is not an identity: no client can present it (dropped)`);
  });
  ids.suffixes.slice(0, MAX_AUTHZ_ENTRIES).forEach(({ parts }, i) => {
    if (parts.length === 0) {
      out.add('*');
      return;
    }
    const suffix = parts.join('.');
    if (isDnsLabels(suffix)) out.add(`*.${suffix}`);
    else f.note(`${at}.suffixes[${i}]`, `${quote(suffix)} is not a run of DNS labels: no client name can end in it (dropped)`);
  });
  if (ids.identities.length + ids.suffixes.length > 2 * MAX_AUTHZ_ENTRIES) f.refuse(at, `more than ${MAX_AUTHZ_ENTRIES} identities or suffixes`);
  return out.has('*') ? ['*'] : [...out];
}

/** What the authentication admits, as source fields; undefined when it admits nobody. */
function authnFields(a: Authz, f: Findings, at: string): Partial<Source> | undefined | 'invalid' {
  const p = a.authentication?.permit;
  if (!p) {
    f.refuse(`${at}.authentication`, 'is missing (Linkerd refuses such an authorization)');
    return 'invalid';
  }
  if (p.kind === 'unauthenticated') return {};
  const c = p.meshTLS.clients;
  if (!c) {
    f.refuse(`${at}.authentication.meshTLS`, 'names no clients (Linkerd refuses such an authorization)');
    return 'invalid';
  }
  if (c.kind === 'unauthenticated') return { identities: ['*'] };
  const patterns = identityPatterns(c.identities, f, `${at}.authentication.meshTLS.identities`);
  return patterns.length === 0 ? undefined : { identities: patterns };
}

const ALL_V4 = '0.0.0.0/0';
const ALL_V6 = '::/0';

function networksOf(list: readonly Network[], f: Findings, at: string): { ipBlocks?: string[]; notIpBlocks?: string[] }[] {
  if (list.length === 0) {
    f.refuse(`${at}.networks`, 'is empty (Linkerd refuses an authorization without networks)');
    return [];
  }
  if (list.length > MAX_AUTHZ_ENTRIES) f.refuse(`${at}.networks`, `more than ${MAX_AUTHZ_ENTRIES} networks`);
  const nets = list.slice(0, MAX_AUTHZ_ENTRIES).map((n, i) => {
    const nat = `${at}.networks[${i}]`;
    const cidr = cidrOf(n.net, f, `${nat}.net`);
    const except = n.except.slice(0, MAX_AUTHZ_ENTRIES).map((e, j) => cidrOf(e, f, `${nat}.except[${j}]`)).filter((x): x is string => x !== undefined);
    return { cidr, except };
  });
  const plain = new Set(nets.filter((n) => n.except.length === 0).map((n) => n.cidr));
  // Every address (Linkerd's default networks): no address condition at all.
  if (plain.has(ALL_V4) && plain.has(ALL_V6)) return [{}];
  return nets.map((n) => (n.except.length ? { ipBlocks: [n.cidr!], notIpBlocks: n.except } : { ipBlocks: [n.cidr!] }));
}

/**
 * One Authz as alternative sources (any may match); [] when it admits nobody. Refusals (invalid
 * authorizations) are recorded in `f`.
 */
export function authzSources(a: Authz, f: Findings, at: string): Source[] {
  const nets = networksOf(a.networks, f, at);
  const authn = authnFields(a, f, at);
  if (authn === 'invalid' || authn === undefined || f.failed) return [];
  return nets.map((n) => ({ ...n, ...authn }));
}

/** A rule name from an Authz's metadata (`ns/name`) or its position. */
export function authzName(a: Authz, fallback: string): string {
  const k = a.metadata?.kind;
  if (k?.kind === 'resource') return `${k.resource.kind || 'authz'}:${k.resource.namespace ? `${k.resource.namespace}/` : ''}${k.resource.name}`;
  if (k?.kind === 'default') return `default:${k.default}`;
  return fallback;
}
