// `sidecarless svid inspect --workload-api URI` through the built CLI against the Python (C-core)
// Workload API server: every SVID of the first message reported as --dir reports a directory (who,
// hint, valid until, key matches, chains to its bundle), the federated bundles, exit codes as --dir.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { assertError, assertNoStack, sidecarless } from '../e2e/cli-run.js';
import { type WorkloadServer, WorkloadServer as Server, federated, wireSvid } from '../helpers/workload-server.js';

const TD = 'example.org';
let ca: DevCa;
let partner: DevCa;
const servers: WorkloadServer[] = [];
before(async () => {
  [ca, partner] = await Promise.all([createDevCa({ trustDomain: TD }), createDevCa({ trustDomain: 'partner.org' })]);
});
after(() => Promise.all(servers.map((s) => s.stop())));

async function serve(o: { tcp?: boolean } = {}): Promise<WorkloadServer> {
  const s = await Server.start(o);
  servers.push(s);
  return s;
}

/** The lines of the report block titled `SVID i of …`. */
function block(stdout: string, i: number): string {
  const start = stdout.indexOf(`SVID ${i} of `);
  assert.ok(start >= 0, `no SVID ${i} block in:\n${stdout}`);
  const next = stdout.indexOf('\nSVID ', start + 1);
  return stdout.slice(start, next < 0 ? undefined : next);
}

function line(text: string, label: string): string {
  const m = new RegExp(`^  ${label} {2,}(.*)$`, 'm').exec(text);
  assert.ok(m, `no "${label}" line in:\n${text}`);
  return m[1]!;
}

test('two SVIDs with hints and a federated bundle: each reported, exit 0', async () => {
  const server = await serve();
  const [a, b] = await Promise.all([ca.issue({ spiffeId: `spiffe://${TD}/ns/default/sa/web` }), ca.issue({ spiffeId: `spiffe://${TD}/ns/default/sa/batch` })]);
  await server.state([wireSvid(a, { hint: 'internal' }), wireSvid(b, { hint: 'external' })], federated(partner));
  const r = await sidecarless(['svid', 'inspect', '--workload-api', server.address]);
  assertNoStack(r);
  assert.equal(r.code, 0, r.stderr);
  const first = block(r.stdout, 0);
  assert.match(first, new RegExp(`^SVID 0 of 2 from ${server.address.replace(/[/.]/g, '\\$&')} \\(the default`));
  assert.equal(line(first, 'spiffe id'), a.spiffeId);
  assert.equal(line(first, 'hint'), '"internal"');
  assert.match(line(first, 'valid until'), /^\S+Z {2}\(\d+m\d*s? left\)|^\S+Z {2}\(.* left\)$/);
  assert.equal(line(first, 'key'), 'svids[0].x509_svid_key matches the certificate');
  assert.match(line(first, 'chain'), /^verifies against svids\[0\]\.bundle \(trust domain example\.org, no intermediates\)$/);
  assert.equal(line(first, 'serial'), a.serialNumber);
  assert.match(first, /OK: valid now, key matches, chain verifies/);
  const second = block(r.stdout, 1);
  assert.equal(line(second, 'spiffe id'), b.spiffeId);
  assert.equal(line(second, 'hint'), '"external"');
  assert.match(r.stdout, /^federated bundles\n {2}partner\.org {2}1 root$/m);
  await server.waitForCalls(1); // the server's record comes on another pipe than its message
  assert.equal(server.calls.length, 1);
  assert.deepEqual(server.calls[0]!.metadata.filter(([k]) => k === 'workload.spiffe.io'), [['workload.spiffe.io', 'true']]);
});

test('a key that does not match and a bad federated bundle: reported, listed, exit 1 (TCP address)', async () => {
  const server = await serve({ tcp: true });
  const [a, b] = await Promise.all([ca.issue({ spiffeId: `spiffe://${TD}/web` }), ca.issue({ spiffeId: `spiffe://${TD}/web` })]);
  await server.state([wireSvid(a, { keyPem: b.keyPem })], { 'partner.org': Buffer.from('x') });
  const r = await sidecarless(['svid', 'inspect', '--workload-api', server.address]);
  assertNoStack(r);
  assert.equal(r.code, 1);
  assert.equal(line(block(r.stdout, 0), 'key'), 'DOES NOT MATCH: svids[0].x509_svid_key is the key of another certificate');
  assert.equal(line(block(r.stdout, 0), 'hint'), '(none)');
  assert.match(r.stdout, /^ {2}"partner\.org" {2}INVALID: /m);
  assert.match(r.stderr, /^sidecarless: the Workload API at tcp:\/\/127\.0\.0\.1:\d+ sent 2 problems: svids\[0\]: the key does not match the certificate; federated bundle "partner\.org" cannot be used \[ERR_SIDECARLESS_SVID_INVALID\]$/m);
});

test('no answer, a refusal, a bad address, neither or both options: clear errors and exit codes', async () => {
  const silent = await serve(); // no state: no first message
  const late = await sidecarless(['svid', 'inspect', '--workload-api', silent.address, '--timeout', '300ms']);
  assertError(late, 1, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE', /no message from unix:\/\/\/.*agent\.sock within 300 ms\. Is the SPIRE agent running/);

  const refusing = await serve();
  await refusing.fail('PERMISSION_DENIED', 'no identity issued', -1);
  const denied = await sidecarless(['svid', 'inspect', '--workload-api', refusing.address]);
  assertError(denied, 1, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE', /answered PERMISSION_DENIED \(7\): no identity issued/);

  const bad = await sidecarless(['svid', 'inspect', '--workload-api', 'unix://agent.sock']);
  assertError(bad, 2, 'ERR_SIDECARLESS_USAGE', /--workload-api: "unix:\/\/agent\.sock" is not a Workload API address/);
  const none = await sidecarless(['svid', 'inspect']);
  assertError(none, 2, 'ERR_SIDECARLESS_USAGE', /give exactly one of --dir DIR and --workload-api URI/);
  const both = await sidecarless(['svid', 'inspect', '--dir', '/tmp', '--workload-api', silent.address]);
  assertError(both, 2, 'ERR_SIDECARLESS_USAGE', /give exactly one of/);
});

test('a server that answers with terminal sequences in its status: the CLI prints them escaped, exit 1', async () => {
  const refusing = await serve();
  await refusing.fail('PERMISSION_DENIED', 'denied\n\u001b[2J\u001b[32mOK: valid now', -1);
  const r = await sidecarless(['svid', 'inspect', '--workload-api', refusing.address]);
  assertError(r, 1, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE', /answered PERMISSION_DENIED \(7\): denied\\u000a\\u001b\[2J/);
  assert.doesNotMatch(r.stderr, /\u001b/);
});

test('--timeout past 2^31 ms (25d) waits: Node would fire such a timer at once; the server going away ends the wait instead', async () => {
  const silent = await serve(); // no state: no first message; stopped below (stop() again in after() does nothing)
  const run = sidecarless(['svid', 'inspect', '--workload-api', silent.address, '--timeout', '25d']);
  let done = false;
  void run.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 1_500));
  assert.equal(done, false, 'the CLI is still waiting for the first message');
  await silent.stop();
  const r = await run;
  assertError(r, 1, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE', /answered UNAVAILABLE \(14\)/);
  assert.doesNotMatch(r.stderr, /within 2160000000 ms/);
});
