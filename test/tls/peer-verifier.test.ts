// PeerVerifier's cost model: the cache is looked up by the cheap getPeerCertificate(false)
// fingerprint, the detailed chain is built only on a miss, and the client reuses the certificate
// Node built for checkServerIdentity. With SVIDs issued through intermediates, because Node's
// getPeerX509Certificate once dropped the leaf from the peer chain: getPeerCertificate(false) must
// have no such side effect.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type TLSSocket, TLSSocket as TLSSocketClass, createServer, type Server } from 'node:tls';
import { systemClock } from '../../src/clock.js';
import { createDevCa, type DevCa } from '../../src/identity/dev-ca.js';
import { ClientTls } from '../../src/tls/connect.js';
import { PeerVerifier } from '../../src/tls/peer.js';
import { ServerTls } from '../../src/tls/server-context.js';
import { ManualSource, TD, filesOf, idOf } from '../helpers/certs.js';
import { LOOPBACK, closeServer, listen } from '../helpers/net.js';

/** Counts getPeerCertificate calls by their `detailed` argument, on every TLS socket. */
function countPeerCertCalls(): { detailed: number; brief: number; restore: () => void } {
  const proto = TLSSocketClass.prototype as TLSSocket & { getPeerCertificate: (d?: boolean) => unknown };
  const original = proto.getPeerCertificate;
  const counts = {
    detailed: 0,
    brief: 0,
    restore: () => {
      proto.getPeerCertificate = original;
    },
  };
  proto.getPeerCertificate = function (this: TLSSocket, detailed?: boolean) {
    if (detailed) counts.detailed++;
    else counts.brief++;
    return original.call(this, detailed as boolean);
  } as typeof original;
  return counts;
}

function chainFingerprints(socket: TLSSocket): string[] {
  const out: string[] = [];
  let c = socket.getPeerCertificate(true);
  while (c?.raw && !out.includes(c.fingerprint256)) {
    out.push(c.fingerprint256);
    c = c.issuerCertificate;
  }
  return out;
}

describe('getPeerCertificate(false) before (true): the leaf and intermediates stay (both sides)', () => {
  let ca: DevCa;
  before(async () => {
    ca = await createDevCa({ intermediates: 1 });
  });

  test('raw node:tls with SVIDs issued through an intermediate', async () => {
    const server = await ca.issue({ spiffeId: idOf('server') });
    const client = await ca.issue({ spiffeId: idOf('client') });
    const seen: Record<string, { brief: string; chain: string[] }> = {};
    const srv: Server = createServer({ cert: server.certChainPem, key: server.keyPem, ca: server.bundlePem, requestCert: true, rejectUnauthorized: true }, (s) => {
      const brief = s.getPeerCertificate(false).fingerprint256;
      seen.server = { brief, chain: chainFingerprints(s) };
      s.end();
    });
    const port = await listen(srv);
    try {
      const { connect } = await import('node:tls');
      await new Promise<void>((resolve, reject) => {
        const s = connect({ host: LOOPBACK, port, cert: client.certChainPem, key: client.keyPem, ca: client.bundlePem, checkServerIdentity: () => undefined }, () => {
          const brief = s.getPeerCertificate(false).fingerprint256;
          seen.client = { brief, chain: chainFingerprints(s) };
          s.on('close', () => resolve());
        });
        s.on('error', reject);
        s.resume();
      });
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      await closeServer(srv);
    }
    for (const side of ['client', 'server'] as const) {
      const s = seen[side];
      assert.ok(s, `${side} saw the peer`);
      assert.equal(s.chain[0], s.brief, `${side}: the detailed chain still starts with the leaf`);
      assert.ok(s.chain.length >= 2, `${side}: the intermediate is still in the chain (${s.chain.length} certificates)`);
    }
  });

  test('PeerVerifier: a miss after the brief lookup verifies the intermediate chain; a hit never builds the detailed chain', async () => {
    const serverSvid = await ca.issue({ spiffeId: idOf('server') });
    const clientSvid = await ca.issue({ spiffeId: idOf('client') });
    const serverSource = new ManualSource();
    serverSource.set(filesOf(serverSvid), TD);
    const clientSource = new ManualSource();
    clientSource.set(filesOf(clientSvid), TD);
    const serverVerifier = new PeerVerifier(() => serverSource.getBundles(), systemClock);
    const serverTls = new ServerTls(serverSource, serverVerifier, 'strict');
    const peers: Array<string | undefined> = [];
    const srv = createServer(serverTls.options(), (s) => {
      peers.push((s as TLSSocket & { [k: symbol]: { spiffeId: string } | null })[Symbol.for('sidecarless.v1.peer')]?.spiffeId);
      s.end();
    });
    serverTls.attach(srv);
    const port = await listen(srv);
    const clientTls = new ClientTls(clientSource, new PeerVerifier(() => clientSource.getBundles(), systemClock));
    const connect = clientTls.connector({ authorize: (id) => (id.id === idOf('server') ? undefined : `not ${id.id}`), describe: 'test server' });
    const once = () =>
      new Promise<void>((resolve, reject) => {
        connect({ hostname: LOOPBACK, host: LOOPBACK, port: String(port), protocol: 'https:' } as never, (err, socket) => {
          if (err) return reject(err);
          socket!.on('close', () => resolve());
          socket!.on('error', () => {});
          socket!.resume();
        });
      });
    const counts = countPeerCertCalls();
    try {
      await once(); // both caches miss
      const afterFirst = { ...counts };
      await once(); // both caches hit
      const second = { detailed: counts.detailed - afterFirst.detailed, brief: counts.brief - afterFirst.brief };
      counts.restore();
      assert.deepEqual(peers, [idOf('client'), idOf('client')], 'the server admitted the client SVID issued through an intermediate, twice');
      // First connection: Node's own call for checkServerIdentity (client) + the server's miss.
      assert.equal(afterFirst.detailed, 2, `detailed calls on the first connection: ${afterFirst.detailed}`);
      // Second: only Node's own call on the client; the server's hit used the brief certificate.
      assert.equal(second.detailed, 1, `detailed calls on a cached connection: ${second.detailed}`);
      assert.ok(second.brief >= 1, 'the server looked its cache up by the brief certificate');
    } finally {
      counts.restore();
      clientTls.close();
      serverTls.close();
      await closeServer(srv);
    }
  });
});

describe('PeerVerifier without a certificate', () => {
  let verifier: PeerVerifier;
  after(() => verifier?.clear());
  test('a socket whose peer sent nothing is refused with a reason, not a crash', () => {
    verifier = new PeerVerifier(() => new Map(), systemClock);
    const fake = { getPeerCertificate: () => ({}) } as unknown as TLSSocket;
    assert.throws(() => verifier.verifySocket(fake), /presented no certificate/);
  });
});
