// svid inspect's report, pure, at chosen moments: the bounds of the validity window, and a CA in
// the chain that expires before the leaf.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type FileRead, inspectSvid, renderReport } from '../../src/cli/svid-report.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { craftLeaf } from '../helpers/certs.js';

const TD = 'example.org';
const ID = `spiffe://${TD}/web`;
let ca: DevCa;
before(async () => {
  ca = await createDevCa({ trustDomain: TD, caTtlMs: 2 * 3_600_000 });
});

const files = (cert: string, key: string, bundle: string): { cert: FileRead; key: FileRead; bundle: FileRead } => ({
  cert: { name: 'svid.pem', text: cert },
  key: { name: 'svid_key.pem', text: key },
  bundle: { name: 'svid_bundle.pem', text: bundle },
});

test('valid at notBefore and at notAfter, expired 1 s after, not yet valid 1 s before', async () => {
  const now = Math.floor(Date.now() / 1000) * 1000;
  const leaf = await craftLeaf(ca, { uris: [ID], notBefore: now - 60_000, notAfter: now + 60_000 });
  const at = (t: number) => inspectSvid(files(leaf.certChainPem, leaf.keyPem, ca.bundlePem), t);
  assert.equal(at(now - 60_000).ok, true, 'at notBefore');
  assert.equal(at(now + 60_000).ok, true, 'at notAfter');
  const late = at(now + 61_000);
  assert.deepEqual(late.problems, ['expired 1s ago']);
  assert.match(renderReport('d', late), /valid until +\S+Z  EXPIRED 1s ago\n/);
  assert.match(renderReport('d', late), /chain +verifies against svid_bundle\.pem/, 'the chain is judged apart from the time');
  const early = at(now - 61_000);
  assert.equal(early.ok, false);
  assert.match(early.problems[0]!, /^not valid until \S+Z$/);
});

test('a CA that expires before the leaf is reported, and is a problem once it has expired', async () => {
  const now = Date.now();
  const leaf = await craftLeaf(ca, { uris: [ID], notBefore: now - 60_000, notAfter: now + 5 * 3_600_000 });
  const ok = inspectSvid(files(leaf.certChainPem, leaf.keyPem, ca.bundlePem), now);
  assert.equal(ok.ok, true);
  assert.match(renderReport('d', ok), /chain until +\S+Z: a CA in the chain expires before the leaf\n/);
  const later = inspectSvid(files(leaf.certChainPem, leaf.keyPem, ca.bundlePem), now + 3 * 3_600_000);
  assert.equal(later.ok, false);
  assert.match(later.problems.join('; '), /the chain does not verify against svid_bundle\.pem/);
  assert.match(renderReport('d', later), /DOES NOT VERIFY against svid_bundle\.pem: the root certificate has expired/);
});

test('files that could not be read are reported by their summary, and the rest is still checked', async () => {
  const leaf = await craftLeaf(ca, { uris: [ID] });
  const r = inspectSvid({ ...files(leaf.certChainPem, leaf.keyPem, ca.bundlePem), key: { name: 'svid_key.pem', problem: 'MISSING: the file does not exist', summary: 'svid_key.pem is missing' } }, Date.now());
  assert.deepEqual(r.problems, ['svid_key.pem is missing']);
  const text = renderReport('d', r);
  assert.match(text, /spiffe id +spiffe:\/\/example\.org\/web\n/);
  assert.match(text, /chain +verifies/);
  assert.match(text, /\nPROBLEMS: svid_key\.pem is missing$/);
});
