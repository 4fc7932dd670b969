// The DER reader and chain verification against OpenSSL (node:crypto X509Certificate) as the
// reference. Inputs are real SVID chains (a dev CA with an intermediate) mutated byte-wise: flips,
// truncations, insertions, deletions, length bytes nudged. Oracles:
// - parseCertificateDer throws only DerError, and what it accepts OpenSSL parses too, with the same
//   serial number, validity and URI SANs (never accept what the reference rejects);
// - verifyPeerChain never throws, and accepts a chain only when OpenSSL verifies the leaf's signature
//   with its issuer's key and the accepted SPIFFE ID is a URI SAN OpenSSL reads in that leaf.
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { DerError, parseCertificateDer } from '../../../src/identity/der.js';
import { createDevCa } from '../../../src/identity/dev-ca.js';
import { bundlesFromPem } from '../../../src/identity/bundle.js';
import { pemToCertDers } from '../../../src/identity/pem.js';
import { verifyPeerChain } from '../../../src/tls/verify-peer.js';
import { type FuzzTarget, onlyThrows } from '../harness.js';

const MUTATION = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xff, 0x30, 0x02, 0x03, 0x04, 0x05, 0x06, 0x17, 0x18, 0x86) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
);
type Mutation = typeof MUTATION extends fc.Arbitrary<infer M> ? M : never;

function mutate(der: Buffer, ms: readonly Mutation[]): Buffer {
  let b = Buffer.from(der);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.kind === 'flip') b[at] = b[at]! ^ (1 << m.bit);
    else if (m.kind === 'set') b[at] = m.value;
    else if (m.kind === 'cut') b = b.subarray(0, at);
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
  }
  return b;
}

function openssl(der: Buffer): X509Certificate | undefined {
  try {
    return new X509Certificate(der);
  } catch {
    return undefined;
  }
}

const hexSerial = (s: string) => s.replace(/^0+/, '').toUpperCase() || '0';
/** OpenSSL's URI SANs (Node quotes, JSON-style, a name holding characters that need it). */
const uriSans = (x: X509Certificate) =>
  (x.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => (s[4] === '"' ? (JSON.parse(s.slice(4)) as string) : s.slice(4)));

export const derChain: FuzzTarget = {
  name: 'der-chain',
  oracle: 'parseCertificateDer: only DerError, and nothing OpenSSL rejects, with the same serial, validity and URI SANs; verifyPeerChain: accepts only what OpenSSL signature-verifies, for a URI SAN of the leaf',
  shortRuns: 600,
  property: async () => {
    const ca = await createDevCa({ trustDomain: 'cluster.local', intermediates: 1 });
    const svid = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/web' });
    const chain = pemToCertDers(svid.certChainPem);
    const bundles = bundlesFromPem(svid.bundlePem, 'cluster.local');
    const issuerOf = [openssl(chain[1]!)!, openssl(pemToCertDers(svid.bundlePem)[0]!)!];
    const now = Date.now();
    return fc.property(fc.integer({ min: 0, max: chain.length - 1 }), fc.array(MUTATION, { minLength: 1, maxLength: 3 }), (which, ms) => {
      const mutated = mutate(chain[which]!, ms);
      let fields: ReturnType<typeof parseCertificateDer> | undefined;
      const err = onlyThrows([DerError], () => (fields = parseCertificateDer(mutated)));
      const ref = openssl(mutated);
      if (!err) {
        if (!ref) throw new Error(`our DER reader accepted a certificate OpenSSL rejects (${mutated.toString('hex').slice(0, 80)}…)`);
        if (hexSerial(fields!.serialNumber) !== hexSerial(ref.serialNumber)) throw new Error(`serial ${fields!.serialNumber}, OpenSSL says ${ref.serialNumber}`);
        if (Math.abs(fields!.notAfter - Date.parse(ref.validTo)) >= 1000 || Math.abs(fields!.notBefore - Date.parse(ref.validFrom)) >= 1000) throw new Error(`validity ${new Date(fields!.notBefore).toISOString()}…${new Date(fields!.notAfter).toISOString()}, OpenSSL says ${ref.validFrom}…${ref.validTo}`);
        if (JSON.stringify(fields!.uris) !== JSON.stringify(uriSans(ref))) throw new Error(`URI SANs ${JSON.stringify(fields!.uris)}, OpenSSL says ${JSON.stringify(uriSans(ref))}`);
      }
      const presented = chain.map((d, i) => (i === which ? mutated : d));
      const verdict = verifyPeerChain(presented, bundles, now);
      if (verdict.ok) {
        const leaf = openssl(presented[0]!);
        if (!leaf || !leaf.verify(issuerOf[0]!.publicKey)) throw new Error('a chain whose leaf signature OpenSSL does not verify was accepted');
        if (which === 1 && !issuerOf[0]!.verify(issuerOf[1]!.publicKey)) throw new Error('a chain whose intermediate signature OpenSSL does not verify was accepted');
        if (!uriSans(leaf).includes(verdict.verified.peer.id)) throw new Error(`accepted as ${verdict.verified.peer.id}, not a URI SAN of the leaf`);
      }
      return true;
    });
  },
};
