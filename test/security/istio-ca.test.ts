// SECURITY-CASES G.39 and the Istio CA's neighbours: a CA that answers what it must not (a chain
// that does not verify, a leaf for another key or another ID, an expired leaf, too short a chain,
// not PEM) and a control plane whose TLS certificate is not what we pinned (another root, another
// name, an impostor at the same address, plaintext, roots the process trusts otherwise). Each is
// refused; the last good SVID is kept with the error visible; the token never reaches a server that
// was not verified; nothing falls back to plaintext.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { IstioCaSource } from '../../src/sources/istio-ca.js';
import { type IstioCaFault, type IstioCaServer, type IstioCaServerOptions, startIstioCa } from '../helpers/istio-ca-server.js';
import { closeServer, listen } from '../helpers/net.js';

const TD = 'cluster.local';
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;
const ADMIN = `spiffe://${TD}/ns/default/sa/admin`;
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.orders-token.sig';
type T = Parameters<typeof startIstioCa>[0];

function sourceOf(t: T, ca: Pick<IstioCaServer, 'address' | 'rootFile'>, o: { address?: string; serverName?: string } = {}) {
  const errors: string[] = [];
  const source = new IstioCaSource({ address: ca.address, root: ca.rootFile, token: TOKEN, trustDomain: TD, spiffeId: ORDERS, random: () => 0.5, onError: (e) => errors.push(e.message), ...o });
  t.after(() => source.close());
  return { source, errors };
}

describe('a CA whose answer must be refused (the last good SVID kept, the error visible)', () => {
  const cases: Array<[NonNullable<IstioCaFault> | 'other-id', RegExp]> = [
    ['bad-chain', /verif|chain|issuer|signature/i],
    ['other-key', /private key does not belong to the leaf/],
    ['expired', /expired|not valid/i],
    ['short-chain', /answered a cert_chain of 1 certificate\(s\): it must hold the leaf first and the root last/],
    ['empty-chain', /answered a cert_chain of 0 certificate\(s\)/],
    ['not-pem', /element 0 of the cert_chain from the Istio CA at .* is not one PEM certificate/],
    // The last element is taken as the CA's root: one that names spiffe://partner.example would have
    // made this workload trust partner.example's peers as the CA's word.
    ['foreign-root', /answered a bundle with roots of trust domain partner\.example: a CA of cluster\.local vouches for cluster\.local only/],
    // 1001 certificates: refused by their number before any is parsed (parsing them all blocked the event loop for ~0.4 s).
    ['long-chain', /answered a cert_chain of 1001 certificates: more than 8 \(the leaf, at most 6 intermediates and the root\)/],
    ['other-id', new RegExp(`issued a certificate for ${ADMIN}, not for ${ORDERS}: the token given in controlPlane\\.token belongs to another workload`)],
  ];
  for (const [fault, why] of cases) {
    test(fault, async (t) => {
      const ca = await startIstioCa(t, { tokens: { [TOKEN]: ORDERS } });
      const { source, errors } = sourceOf(t, ca);
      await source.start();
      const good = source.getX509Svid();
      if (fault === 'other-id') await ca.tokens({ [TOKEN]: ADMIN });
      else await ca.fault(fault);
      await source.rotate();
      await ca.waitForCalls(2); // the server's record travels by its stdout, the answer by gRPC: either may come first
      assert.equal(ca.calls.length, 2);
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0]!, why);
      const st = source.status();
      assert.equal(st.state, 'stale');
      assert.match(st.lastError!, why);
      assert.equal(source.getX509Svid().chain[0]!.serialNumber, good.chain[0]!.serialNumber, 'the last good SVID is still served');
      assert.ok(source.rotateAt > Date.now(), 'a retry is scheduled');
      assert.deepEqual(st.trustDomains, [TD], 'no bundle from a refused answer');
      await ca.fault(null);
      await ca.tokens({ [TOKEN]: ORDERS });
      await source.rotate();
      assert.equal(source.status().state, 'ready', 'a good answer afterwards is taken');
    });
  }
});

describe('a control plane that is not the one pinned: no connection, the token never sent', () => {
  const servers: Array<[string, IstioCaServerOptions]> = [
    ['its certificate is issued by another root', { serveFrom: 'other' }],
    ['its certificate is for another name', { serverNames: ['evil.example'] }],
    ['it speaks plaintext', { plaintext: true }],
  ];
  for (const [name, server] of servers) {
    test(name, async (t) => {
      const ca = await startIstioCa(t, { tokens: { [TOKEN]: ORDERS }, ...server });
      const { source, errors } = sourceOf(t, ca);
      await source.start();
      assert.equal(source.status().state, 'starting');
      assert.match(errors[0]!, new RegExp(`cannot reach the Istio CA at ${ca.address} \\(TLS pinned to ${ca.rootFile}\\) \\(UNAVAILABLE: `));
      assert.throws(() => source.getX509Svid(), /no X\.509-SVID yet/);
      assert.equal(ca.received, 0, 'no call reached the server: the token was never sent');
    });
  }

  test('the name checked is the address’s host: a certificate for istiod.istio-system.svc is refused at 127.0.0.1 unless that name is asked for', async (t) => {
    const ca = await startIstioCa(t, { tokens: { [TOKEN]: ORDERS }, serverNames: ['istiod.istio-system.svc'] });
    const ip = `127.0.0.1:${ca.port}`;
    const a = sourceOf(t, { address: ip, rootFile: ca.rootFile });
    await a.source.start();
    assert.match(a.errors[0]!, /UNAVAILABLE: .*(IP|altnames|does not match)/i);
    const b = sourceOf(t, { address: ip, rootFile: ca.rootFile }, { serverName: 'istiod.istio-system.svc' });
    await b.source.start();
    assert.equal(b.source.status().state, 'ready');
    assert.equal(ca.received, 1);
  });

  test('an impostor at the same address after a good start: the renewal is refused, the last good SVID kept', async (t) => {
    const real = await startIstioCa(t, { tokens: { [TOKEN]: ORDERS } });
    const { source, errors } = sourceOf(t, real);
    await source.start();
    const good = source.getX509Svid();
    await real.close();
    const impostor = await startIstioCa(t, { tokens: { [TOKEN]: ADMIN }, port: real.port }); // its own root, same name
    await source.rotate();
    assert.match(errors[0]!, /UNAVAILABLE: .*certificate/);
    assert.equal(source.status().state, 'stale');
    assert.equal(source.getX509Svid().chain[0]!.serialNumber, good.chain[0]!.serialNumber);
    assert.equal(impostor.received, 0, 'the impostor never got the token');
  });

  test('what goes on the wire to a listener that never answers is a TLS ClientHello, never the token; close() ends that connection', async (t) => {
    const bytes: Buffer[] = [];
    const open = new Set<Socket>();
    const server = createServer((s: Socket) => {
      open.add(s);
      s.on('data', (d) => bytes.push(d));
      s.on('close', () => open.delete(s));
    });
    t.after(() => {
      for (const s of open) s.destroy();
      return closeServer(server);
    });
    const port = await listen(server);
    const ca = await startIstioCa(t); // only for its root file
    const { source, errors } = sourceOf(t, { address: `127.0.0.1:${port}`, rootFile: ca.rootFile }, { serverName: 'istiod.istio-system.svc' });
    const started = source.start();
    while (bytes.length === 0) await new Promise((r) => setTimeout(r, 10));
    const all = Buffer.concat(bytes);
    assert.equal(all[0], 0x16, 'a TLS handshake record');
    assert.ok(!all.includes(Buffer.from(TOKEN)), 'the token is not in the bytes');
    assert.ok(!all.includes(Buffer.from('authorization')));
    assert.equal(open.size, 1);
    await source.close();
    await started;
    for (let i = 0; i < 100 && open.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(open.size, 0, 'the half-open handshake was ended by close(): it does not keep the process alive');
    assert.deepEqual(errors, []);
  });

  test('roots the process trusts otherwise (NODE_EXTRA_CA_CERTS, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH) are not trust anchors for the CA', async (t) => {
    const ca = await startIstioCa(t, { tokens: { [TOKEN]: ORDERS }, serveFrom: 'other' });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('../fixtures/istio-ca/source-child.ts', import.meta.url)), JSON.stringify({ address: ca.address, root: ca.rootFile, token: TOKEN, ttlMs: 60_000, timers: 'real', spiffeId: ORDERS })],
      { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, NODE_EXTRA_CA_CERTS: ca.otherRootFile, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: ca.otherRootFile } },
    );
    const first = await new Promise<{ event: string; message?: string }>((resolve) => createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l))));
    await new Promise((r) => child.once('exit', r));
    assert.equal(first.event, 'failed');
    assert.match(first.message!, /UNAVAILABLE: .*certificate/);
    assert.equal(ca.received, 0);
  });
});

describe('a token or root path that is not a small regular file', () => {
  test('a FIFO, a device or a huge file where the token or the root goes: refused at once, nothing sent, close() does not wait on it', async (t) => {
    const { execFileSync } = await import('node:child_process');
    const { writeFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const ca = await startIstioCa(t, { tokens: { [TOKEN]: ORDERS } });
    const fifo = join(ca.dir, 'token-fifo');
    execFileSync('mkfifo', [fifo]);
    const huge = join(ca.dir, 'huge-token');
    await writeFile(huge, 'x'.repeat(200_000));
    const cases: Array<[string, { token?: { file: string }; root?: string }, RegExp]> = [
      ['fifo token', { token: { file: fifo } }, /cannot read the control-plane token file .*token-fifo: it is not a regular file/],
      ['device token', { token: { file: '/dev/zero' } }, /token file \/dev\/zero: it is not a regular file/],
      ['huge token', { token: { file: huge } }, /huge-token: it is 200000 bytes, more than the 65536/],
      ['fifo root', { root: fifo }, /cannot read the control-plane root .*token-fifo: it is not a regular file/],
    ];
    for (const [name, o, why] of cases) {
      const errors: string[] = [];
      const source = new IstioCaSource({ address: ca.address, root: ca.rootFile, token: TOKEN, trustDomain: TD, spiffeId: ORDERS, onError: (e) => errors.push(e.message), ...o });
      const started = Date.now();
      await source.start();
      assert.ok(Date.now() - started < 5_000, `${name}: not held up`);
      assert.match(errors[0] ?? '', why, name);
      await source.close();
    }
    assert.equal(ca.received, 0, 'nothing reached the CA');
  });
});
