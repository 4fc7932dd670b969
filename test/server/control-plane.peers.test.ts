// Other people's xDS clients against the embedded control plane, whole (startControlPlane on its
// plaintext ADS port, fed by a mesh file this test writes: services with static endpoints, protocol
// grpc, an Istio AuthorizationPolicy): @grpc/grpc-js-xds in a child process and gRPC C-core (Debian
// python3-grpcio) at the same time, both over mTLS: each has a certificate its own CA state signed
// (a CSR through cp.state.sign) behind a bootstrap file_watcher certificate provider `default`, and
// takes the generated Clusters' ISTIO_MUTUAL contexts (xDS channel credentials); the backends are
// grpc-js servers with SPIFFE certificates from the same CA, client certificates required.
// One run: every resource ACKed by both (status().clients), no NACK; round robin across three
// backends; a 90/10 split within tolerance over 400 calls; a mesh-file edit (the split turned to
// 10/90, one static endpoint removed) ACKed by both within a second of the write and followed, the
// removed endpoint drained (no call reaches it, none fails); an endpoint presenting another SPIFFE ID
// than its service's refused by both; a grpc-js-xds XdsServer with the
// inbound Listener and RBAC (GRPC_XDS_EXPERIMENTAL_RBAC=true) allows the method the policy allows
// its caller, denies another method, and denies C-core (another identity) the allowed one.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { type RunningControlPlane, startControlPlane } from '../../src/server/control-plane-server.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/identity/keys.js';
import { TYPE_URLS } from '../../src/server/xds/outbound-resources.js';
import { type BackendTls, grpcBackends, runCoreXdsClient } from '../helpers/ads-peers.js';
import { runGrpcXdsClient } from '../helpers/xds/grpc-xds-child.js';
import { closeServer, listen } from '../helpers/net.js';
import { makeTempDir } from '../helpers/tmp.js';
import { createServer } from 'node:net';

const TD = 'cluster.local';
const METHOD = '/x.Y/Z';
const READ = '/x.Ledger/Read';
const WRITE = '/x.Ledger/Write';
const PAYMENTS = 'xds:///payments.default.svc.cluster.local:8080';
const SHOP = 'xds:///shop.default.svc.cluster.local:8080';
const LEDGER = 'xds:///grpc-client.default.svc.cluster.local:9443';
/** A service whose static endpoint is p1 (which presents payments' identity, not impostor's). */
const IMPOSTOR = 'xds:///impostor.default.svc.cluster.local:8080';
const id = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;
const quiet = { info() {}, warn() {}, error() {} };

const svc = (name: string, port: number, extra: string) => `  - name: ${name}\n    port: ${port}\n    protocol: grpc\n${extra}`;
const list = (xs: readonly string[]) => `[${xs.join(', ')}]`;
function meshFile(o: { payments: readonly string[]; a: string; b: string; ledger: string; split: readonly [number, number] }): string {
  return `trustDomain: ${TD}
services:
${svc('payments', 8080, `    endpoints: ${list(o.payments)}\n`)}${svc('shop', 8080, `    split: [{ service: shop-a, weight: ${o.split[0]} }, { service: shop-b, weight: ${o.split[1]} }]\n`)}${svc('shop-a', 8080, `    endpoints: [${o.a}]\n`)}${svc('shop-b', 8080, `    endpoints: [${o.b}]\n`)}${svc('grpc-client', 9443, `    endpoints: [${o.ledger}]\n`)}${svc('impostor', 8080, `    endpoints: [${o.payments[0] ?? '127.0.0.1:3'}]\n`)}policies:
  - file: policy.yaml
`;
}

// grpc-client (the grpc-js-xds child's workload, which also serves on its XdsServer) may Read from
// grpc-client; another workload's policy (not selecting it) would allow Write to anyone.
const POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ledger-read, namespace: default }
spec:
  selector: { matchLabels: { app: grpc-client } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["${TD}/ns/default/sa/grpc-client"] } }]
      to: [{ operation: { paths: ["${READ}"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: others-write, namespace: default }
spec:
  selector: { matchLabels: { app: someone-else } }
  action: ALLOW
  rules:
    - to: [{ operation: { paths: ["${WRITE}"] } }]
`;

/** A key and a certificate for `spiffeId` from the control plane's own CA (a CSR through its state). */
async function issue(cp: RunningControlPlane, spiffeId: string): Promise<BackendTls> {
  const keys = await generateKeyPair();
  const chain = await cp.state.sign(await createCsr(keys, spiffeId), spiffeId, 3_600_000);
  return { certChainPem: chain.slice(0, -1).join(''), keyPem: await privateKeyToPem(keys.privateKey), rootPem: cp.state.rootPem };
}

/** Bootstrap certificate providers (`default`, as istio-agent's) over files holding `tls`. */
function providers(dir: string, name: string, tls: BackendTls, rootFile: string): object {
  const cert = join(dir, `${name}-chain.pem`);
  const key = join(dir, `${name}-key.pem`);
  writeFileSync(cert, tls.certChainPem);
  writeFileSync(key, tls.keyPem, { mode: 0o600 });
  return { default: { plugin_name: 'file_watcher', config: { certificate_file: cert, private_key_file: key, ca_certificate_file: rootFile, refresh_interval: '600s' } } };
}

async function freePort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

type Client = ReturnType<RunningControlPlane['status']>['clients'][number] & { nodeId: string; types: Array<{ typeUrl: string; names: string[] | '*'; staleIgnored: number; sent?: { version: string; nonce: string }; acked?: { nonce: string }; lastNack?: { error: string } }> };
const clientOf = (cp: RunningControlPlane, nodeId: string) => cp.status().clients.find((c) => (c as Client).nodeId === nodeId) as Client | undefined;
const typeOf = (cp: RunningControlPlane, nodeId: string, typeUrl: string) => clientOf(cp, nodeId)?.types.find((x) => x.typeUrl === typeUrl);

test('grpc-js-xds and gRPC C-core, over mTLS, against the control plane: ACKs, round robin, 90/10 split, a mesh-file edit followed within a second, a removed endpoint drained, XdsServer RBAC', async (t) => {
  const { dir } = makeTempDir('sidecarless-cp-peers-');
  const ledgerAddress = `127.0.0.1:${await freePort()}`;
  // the CA state first (the backends' certificates come from it), then the real mesh file
  const meshPath = join(dir, 'mesh.yaml');
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  await writeFile(meshPath, meshFile({ payments: [], a: '127.0.0.1:1', b: '127.0.0.1:2', ledger: ledgerAddress, split: [90, 10] }));
  const cp = await startControlPlane({ meshFile: meshPath, state: join(dir, 'state'), listen: '127.0.0.1:0', plaintextListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logger: quiet });
  t.after(() => cp.close());
  const identityOf: Record<string, string> = { p1: 'payments', p2: 'payments', p3: 'payments', a: 'shop-a', b: 'shop-b' };
  const backends = Object.fromEntries((await grpcBackends(t, Object.keys(identityOf), METHOD, (n) => issue(cp, id(identityOf[n]!)))).map((b) => [b.name, b]));
  const [p1, p2, p3, a, b] = ['p1', 'p2', 'p3', 'a', 'b'].map((n) => backends[n]!.address);
  const version0 = cp.status().meshFile.version;
  await writeFile(meshPath, meshFile({ payments: [p1!, p2!, p3!], a: a!, b: b!, ledger: ledgerAddress, split: [90, 10] }));
  for (let i = 0; i < 300 && cp.status().meshFile.version === version0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.notEqual(cp.status().meshFile.version, version0, 'the mesh file with the backends is served');

  const plaintext = cp.plaintextAddress!;
  const phase1 = [{ target: PAYMENTS, method: METHOD, n: 300 }, { target: SHOP, method: METHOD, n: 400 }];
  const phase2 = [{ target: SHOP, method: METHOD, n: 200 }, { target: PAYMENTS, method: METHOD, n: 60 }];
  const js = runGrpcXdsClient(t, {
    server: plaintext,
    pod: 'js',
    target: PAYMENTS,
    // a last empty phase keeps the child (and its XdsServer) up until stop(): C-core calls it in phase 2
    phases: [[...phase1, { target: LEDGER, method: READ, n: 10 }, { target: LEDGER, method: WRITE, n: 10 }], [...phase2, { target: IMPOSTOR, method: METHOD, n: 3 }], []],
    deadlineMs: 3_000,
    xdsCredentials: true,
    certificateProviders: providers(dir, 'js', await issue(cp, id('grpc-client')), cp.rootFile),
    serve: { address: ledgerAddress, name: 'ledger', methods: [READ, WRITE] },
    env: { GRPC_XDS_EXPERIMENTAL_RBAC: 'true' },
  });
  const core = runCoreXdsClient(t, {
    server: plaintext,
    pod: 'core',
    // Read from the XdsServer only in phase 2: the grpc-js-xds child is serving by then (it serves before its phase 1)
    phases: [phase1, [...phase2, { target: LEDGER, method: READ, n: 5 }, { target: IMPOSTOR, method: METHOD, n: 3, deadlineS: 1 }]],
    xdsCredentials: true,
    certificateProviders: providers(dir, 'core', await issue(cp, id('core-client')), cp.rootFile),
  });
  const peers = [js, core];
  const fail = (e: unknown) => new Error(`${(e as Error).message}; clients: ${JSON.stringify(cp.status().clients)}; stderr: ${peers.map((p) => p.stderr().slice(-2_000)).join(' | ')}`);
  try {
    const [rJs, rCore] = await Promise.all(peers.map((p) => p.next()));
    for (const [who, [rr, split]] of [['grpc-js-xds', rJs!], ['C-core', rCore!]] as const) {
      assert.deepEqual([rr!.errors, split!.errors], [{}, {}], who);
      for (const name of ['p1', 'p2', 'p3']) assert.ok(Math.abs((rr!.counts[name] ?? 0) - 100) <= 15, `${who} round robin: ${JSON.stringify(rr!.counts)}`);
      const minority = split!.counts.b ?? 0;
      assert.equal((split!.counts.a ?? 0) + minority, 400, `${who} split: only shop-a and shop-b: ${JSON.stringify(split!.counts)}`);
      assert.ok(minority >= 20 && minority <= 65, `${who} 90/10 split: ${JSON.stringify(split!.counts)}`);
    }
    // the XdsServer's inbound Listener, from the policy that selects it: Read allowed to grpc-client, Write denied, C-core (core-client) denied Read
    const [read, write] = [rJs![2]!, rJs![3]!];
    assert.deepEqual([read.counts, read.errors], [{ ledger: 10 }, {}], 'the policy allows grpc-client to Read');
    assert.deepEqual(Object.keys(write.errors).map((k) => k.split(':')[0]), ['PERMISSION_DENIED'], `Write is not allowed: ${JSON.stringify(write)}`);
    assert.equal(write.errors[Object.keys(write.errors)[0]!], 10);
    // every type ACKed at the version sent, by both; nothing NACKed; stale requests (if any) few
    for (const p of peers) {
      const c = clientOf(cp, p.nodeId);
      assert.ok(c, `${p.nodeId} is a client`);
      assert.deepEqual(c.types.map((x) => x.typeUrl).sort(), [TYPE_URLS.listener, TYPE_URLS.routes, TYPE_URLS.cluster, TYPE_URLS.endpoints].sort());
      for (const x of c.types) {
        assert.equal(x.acked?.nonce, x.sent?.nonce, `${p.nodeId} ACKed ${x.typeUrl} as sent`);
        assert.equal(x.lastNack, undefined, `${p.nodeId} NACKed ${x.typeUrl}: ${x.lastNack?.error}`);
        assert.ok(x.staleIgnored <= 4, `${p.nodeId} ${x.typeUrl}: ${x.staleIgnored} stale requests`);
        assert.ok(Number(x.sent?.nonce) <= 30, `${p.nodeId} ${x.typeUrl}: nonce ${x.sent?.nonce} (a response per request, no ping-pong)`);
      }
      const named = c.types.flatMap((x) => (x.names === '*' ? ['*'] : x.names));
      assert.ok(named.includes('outbound|8080||shop-b.default.svc.cluster.local') && named.includes('payments.default.svc.cluster.local:8080'), JSON.stringify(named));
    }
    assert.ok(typeOf(cp, js.nodeId, TYPE_URLS.listener)!.names.includes(`xds.istio.io/grpc/lds/inbound/${ledgerAddress}`), 'the XdsServer asked for its inbound Listener');

    // the mesh file turns the split around and drops p3: both clients ACK the new routes and endpoints within a second of the write
    const before = (nodeId: string) => [TYPE_URLS.routes, TYPE_URLS.endpoints].map((u) => typeOf(cp, nodeId, u)!.sent!.version);
    const old = new Map(peers.map((p) => [p.nodeId, before(p.nodeId)]));
    const p3Hits = backends.p3!.hits();
    const version1 = cp.status().meshFile.version;
    const writtenAt = Date.now();
    await writeFile(meshPath, meshFile({ payments: [p1!, p2!], a: a!, b: b!, ledger: ledgerAddress, split: [10, 90] }));
    const followed = (nodeId: string) => [TYPE_URLS.routes, TYPE_URLS.endpoints].every((u, i) => {
      const x = typeOf(cp, nodeId, u);
      return x?.sent !== undefined && x.sent.version !== old.get(nodeId)![i] && x.acked?.nonce === x.sent.nonce;
    });
    let servedAt = 0;
    while (!peers.every((p) => followed(p.nodeId)) && Date.now() - writtenAt < 3_000) {
      if (!servedAt && cp.status().meshFile.version !== version1) servedAt = Date.now();
      await new Promise((r) => setTimeout(r, 5));
    }
    const ackedAt = Date.now();
    assert.ok(peers.every((p) => followed(p.nodeId)), 'both clients ACK the new RouteConfiguration and ClusterLoadAssignment');
    assert.ok(ackedAt - writtenAt <= 1_000, `ACKed ${ackedAt - writtenAt} ms after the write (${servedAt ? servedAt - writtenAt : '?'} ms to serve the file)`);
    t.diagnostic(`new split and endpoints ACKed by both ${ackedAt - writtenAt} ms after the write (file served after ${servedAt ? servedAt - writtenAt : '?'} ms)`);
    for (const p of peers) p.proceed();
    const after = await Promise.all(peers.map((p) => p.next()));
    for (const [i, [split, rr]] of after.entries()) {
      const who = i ? 'C-core' : 'grpc-js-xds';
      assert.deepEqual([split!.errors, rr!.errors], [{}, {}], `${who}: no call fails`);
      assert.ok((split!.counts.b ?? 0) >= 160, `${who} follows the new split: ${JSON.stringify(split!.counts)}`);
      assert.deepEqual(Object.keys(rr!.counts).sort(), ['p1', 'p2'], `${who}: the removed endpoint drained: ${JSON.stringify(rr!.counts)}`);
    }
    // p1 answers payments in the same phase, at the same address: impostor fails only on the SAN (the Cluster's SPIFFE ID) check
    for (const [who, r] of [['grpc-js-xds', after[0]![2]!], ['C-core', after[1]![3]!]] as const) {
      assert.deepEqual([r.counts, Object.values(r.errors).reduce((x, y) => x + y, 0)], [{}, 3], `${who} refuses a backend presenting another identity: ${JSON.stringify(r)}`);
      assert.ok(Object.keys(r.errors).some((k) => /subject alternative name|SANs from certificate did not match/.test(k)), `${who}: the SAN check refused it: ${JSON.stringify(r.errors)}`);
    }
    const coreRead = after[1]![2]!;
    assert.deepEqual([coreRead.counts, Object.keys(coreRead.errors).map((k) => k.split(':')[0])], [{}, ['PERMISSION_DENIED']], `C-core (core-client) may not Read: ${JSON.stringify(coreRead)}`);
    assert.equal(backends.p3!.hits(), p3Hits, 'no call reached p3 after it left the mesh file');
  } catch (e) {
    throw fail(e);
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
  }
});
