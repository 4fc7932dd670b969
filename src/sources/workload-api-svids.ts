/**
 * One X509SVIDResponse of the SPIFFE Workload API, made into what a source serves: the chosen SVID
 * (the first, or the one with the configured hint; SPIFFE_Workload_API.md §8), parsed from DER,
 * and the bundles it names (the SVID's own `bundle` for its trust domain, plus every
 * `federated_bundles` entry keyed `spiffe://<td>`). Each message is the whole state (§4.3): a
 * bundle it does not name is not kept. Anything wrong rejects the whole message, with an SvidError
 * naming the field. Pure: no I/O, `now` given.
 */
import { createPrivateKey } from 'node:crypto';
import { SvidError } from '../errors.js';
import { printable, quoted } from '../identity/peer-text.js';
import { type BundleSet, type X509Bundle, bundleFromDer, splitDerCertificates } from '../identity/bundle.js';
import { parseCertificate } from '../identity/certificate.js';
import { derToPem } from '../identity/pem.js';
import { parseSpiffeId } from '../identity/spiffe-id.js';
import { validateLeaf } from '../identity/svid.js';
import { type X509SVID, type X509SVIDResponse } from '../proto/workload.js';
import { type X509Svid } from './source.js';
import { buildSvid } from './svid-set.js';

/** The SVID and bundles a message yields. */
export interface X509Context {
  readonly svid: X509Svid;
  readonly bundles: BundleSet;
  /** Which entry of `svids` was chosen. */
  readonly index: number;
}

/** A server's string as a message quotes it: JSON-quoted, control characters escaped, at most `max` characters (a hostile server picks their size). */
export { quoted };

/** `"internal" (spiffe://…/a), no hint (spiffe://…/b)`: what a message offers, for messages (the first 10). */
export function describeOffered(svids: readonly X509SVID[]): string {
  const shown = svids.slice(0, 10).map((s) => `${s.hint === '' ? 'no hint' : quoted(s.hint)} (${s.spiffeId ? clip(s.spiffeId) : 'no spiffe_id'})`);
  return shown.join(', ') + (svids.length > 10 ? ` and ${svids.length - 10} more` : '');
}

/** A server's SPIFFE ID in a message: as is, control characters escaped, clipped. */
const clip = (s: string, max = 300): string => printable(s, max);

/** The entry to use: the first, or the first with `hint` (duplicate hints: the first, as go-spiffe and SPIRE). */
export function pickSvid(svids: readonly X509SVID[], hint: string | undefined): number {
  if (svids.length === 0) throw new SvidError('the message holds no SVID (the Workload API sends at least one; PermissionDenied when it has none)');
  if (hint === undefined) return 0;
  const i = svids.findIndex((s) => s.hint === hint);
  if (i < 0) {
    throw new SvidError(
      `no SVID has the hint ${quoted(hint)}; the Workload API offered ${describeOffered(svids)}. ` +
        'Set identity.workloadApi.hint to one of those, or leave it out to take the first',
    );
  }
  return i;
}

/** Parses and verifies a message; throws SvidError naming the field at fault. */
export function x509ContextFrom(msg: X509SVIDResponse, opts: { readonly hint?: string | undefined; readonly now: number }): X509Context {
  const index = pickSvid(msg.svids, opts.hint);
  const entry = msg.svids[index]!;
  const at = `svids[${index}]`;
  const chainDers = field(`${at}.x509_svid`, () => splitDerCertificates(entry.x509Svid));
  if (chainDers.length === 0) throw new SvidError(`${at}.x509_svid is empty`);
  const leaf = field(`${at}.x509_svid`, () => parseCertificate(chainDers[0]!));
  const id = field(`${at}.x509_svid`, () => validateLeaf(leaf));
  if (entry.spiffeId !== '' && entry.spiffeId !== id.id) {
    throw new SvidError(`${at}.spiffe_id says ${clip(entry.spiffeId)} but its certificate is for ${id.id}`);
  }
  if (entry.x509SvidKey.length === 0) throw new SvidError(`${at}.x509_svid_key is empty`);
  field(`${at}.x509_svid_key`, () => createPrivateKey({ key: Buffer.from(entry.x509SvidKey), format: 'der', type: 'pkcs8' }), 'is not an unencrypted PKCS#8 DER key');
  const bundles = bundlesOf(msg, entry, id.trustDomain, at);
  const certChainPem = chainDers.map((d) => derToPem(d)).join('');
  const keyPem = derToPem(entry.x509SvidKey, 'PRIVATE KEY');
  const svid = field(at, () => buildSvid(certChainPem, keyPem, bundles, opts.now));
  return { svid: entry.hint === '' ? svid : { ...svid, hint: entry.hint }, bundles, index };
}

/** The SVID's own bundle (for the trust domain of its certificate) and the federated ones. */
function bundlesOf(msg: X509SVIDResponse, entry: X509SVID, ownTd: string, at: string): Map<string, X509Bundle> {
  if (entry.bundle.length === 0) throw new SvidError(`${at}.bundle is empty: the roots of ${ownTd} are needed to verify the SVID`);
  const own = field(`${at}.bundle`, () => bundleFromDer(ownTd, entry.bundle));
  const bundles = new Map<string, X509Bundle>([[ownTd, own]]);
  for (const [key, der] of msg.federatedBundles) {
    const name = `federated_bundles[${quoted(key)}]`;
    const td = field(name, () => {
      const parsed = parseSpiffeId(key);
      if (parsed.path !== '') throw new Error('the key must be a trust domain ID (spiffe://<trust-domain>), with no path');
      return parsed.trustDomain;
    });
    if (td === ownTd) {
      // The SVID's own roots come from its `bundle`; a second, different set would be a choice we will not guess.
      if (Buffer.compare(Buffer.from(der), Buffer.from(entry.bundle)) === 0) continue;
      throw new SvidError(`${name} names the SVID's own trust domain with other roots than ${at}.bundle`);
    }
    bundles.set(td, field(name, () => bundleFromDer(td, der)));
  }
  return bundles;
}

/** Runs `fn`, turning its error into an SvidError that names `name`. */
function field<T>(name: string, fn: () => T, what?: string): T {
  try {
    return fn();
  } catch (e) {
    const msg = (e as Error).message;
    throw new SvidError(what ? `${name} ${what}: ${msg}` : `${name}: ${msg}`, { cause: e });
  }
}
