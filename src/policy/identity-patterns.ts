/**
 * Identity patterns of a policy's `identities`/`notIdentities`, by kind. A pattern judges peers of
 * its own kind only, so no string trick crosses kinds:
 * - `*`: any authenticated peer, SPIFFE or DNS-like;
 * - `spiffe://…` (exact, or `…*` prefix) and `*` + a suffix not starting with `.` (`*` + `/sa/b`):
 *   SPIFFE peers only, as ever;
 * - a DNS name (`orders.default.serviceaccount.identity.linkerd.cluster.local`, exact) or `*.` + a
 *   DNS name (label-wise suffix: `*.default.serviceaccount.identity.linkerd.cluster.local` matches
 *   `a.default.…`, never `xdefault.…` nor the suffix itself): DNS-like peers only (Linkerd).
 * Pure.
 */
import { validateDnsName, validateDnsSuffix } from '../identity/dns-id.js';

/** Whether a (shape-checked) identity pattern judges DNS-like peers (and not SPIFFE ones). */
export function isDnsPattern(p: string): boolean {
  if (p === '*' || p.startsWith('spiffe://')) return false;
  return p.startsWith('*.') || !p.startsWith('*');
}

/** Why `p` is not a valid identity pattern, or undefined. (`*` placement is checked by checkStarPattern first.) */
export function identityPatternProblem(p: string): string | undefined {
  if (p === '*' || p.startsWith('spiffe://')) return undefined;
  if (p.startsWith('*') && !p.startsWith('*.')) return undefined; // a SPIFFE suffix pattern (`*` + `/sa/b`)
  const name = p.startsWith('*.') ? p.slice(2) : p;
  try {
    if (p.startsWith('*.')) validateDnsSuffix(name);
    else validateDnsName(name, 'DNS-like identity');
    return undefined;
  } catch (e) {
    return `"${p}" must be a SPIFFE ID (spiffe://…), a DNS-like identity (sa.ns.serviceaccount.identity.linkerd.cluster.local), "*." + a DNS name, or start with "*": ${(e as Error).message}`;
  }
}

/** The patterns for SPIFFE peers and for DNS-like peers (`*` in both). */
export function splitIdentityPatterns(list: readonly string[]): { spiffe: string[]; dns: string[] } {
  const spiffe: string[] = [];
  const dns: string[] = [];
  for (const p of list) {
    if (p === '*') {
      spiffe.push(p);
      dns.push(p);
    } else if (isDnsPattern(p)) dns.push(p);
    else spiffe.push(p);
  }
  return { spiffe, dns };
}
