// Outbound discovery over a real ADS stream (TLS pinned to the server's root, bearer token) into a
// real mesh: the first request to a host no service holds subscribes to its Listener, waits for
// Listener → RouteConfiguration → Clusters → ClusterLoadAssignments, and is routed over mTLS to the
// backend its route names; a push moves traffic; a NACKed update keeps the last good config; the
// options' services serve all along.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createMesh, type Mesh } from '../../../src/mesh.js';
import { ClusterCodec } from '../../../src/proto/envoy/config/cluster/v3/cluster.js';
import { RouteConfigurationCodec } from '../../../src/proto/envoy/config/route/v3/route.js';
import { CDS, EDS, FQDN, LDS, LISTENER, RDS, ROUTES, cluster, endpoints, listener, okText, routes, xdsClient, serveIstiodShaped, toCluster, weighted } from '../../helpers/xds-istiod.js';
import { devCa, ok, quiet, startReplica, type Replica } from '../../outbound/e2e/replicas.js';
import { startXdsResponder, type XdsResponder } from '../../helpers/xds-responder.js';
import { waitFor } from '../../helpers/net.js';
import { sidecarless } from '../../e2e/cli-run.js';

const opened: Array<{ close(): Promise<unknown> }> = [];
after(async () => {
  await Promise.all(opened.map((x) => x.close().catch(() => {})));
});

async function backends(): Promise<{ v1: Replica; v2: Replica }> {
  const [v1, v2] = await Promise.all([startReplica('v1', ok), startReplica('v2', ok)]);
  opened.push(v1, v2);
  return { v1, v2 };
}

const serve = serveIstiodShaped;

async function client(x: XdsResponder, extra: Record<string, unknown> = {}): Promise<Mesh> {
  const m = await xdsClient(x, extra);
  opened.push(m);
  return m;
}

const body = okText;

describe('outbound discovery over xDS', () => {
  test('the first request to an unknown host subscribes to its Listener and is routed by the tree it gets; short and full names alike', async (t) => {
    const x = await startXdsResponder(t);
    const b = await backends();
    serve(x, b, [toCluster('/v2', cluster('v2')), toCluster('/', cluster('v1'))]);
    const m = await client(x, { outbound: { egress: 'deny' } });
    assert.equal(await body(m, `http://${FQDN}:8080/hello`), 'v1');
    assert.equal(await body(m, `http://${FQDN}:8080/v2/x`), 'v2');
    assert.ok(x.subscribed(LDS).includes(LISTENER), `subscribed ${x.subscribed(LDS).join(', ')}`);
    // The short name: the search domains make payments:8080 the same Listener, its virtual host the same front.
    assert.equal(await body(m, 'http://payments:8080/v2'), 'v2');
    assert.deepEqual(x.subscribed(RDS), [ROUTES]);
    assert.deepEqual(x.subscribed(CDS).sort(), [cluster('v1'), cluster('v2')].sort());
    const snap = m.snapshot();
    assert.equal(snap.source, `xds:${x.server.address}`);
    const front = snap.services.get(`${FQDN}:8080`)!;
    assert.deepEqual([...front.hostnames].sort(), [`${FQDN}:8080`, 'payments:8080']);
    assert.equal(snap.services.get(cluster('v1'))!.identity, 'spiffe://cluster.local/ns/default/sa/payments', 'no TLS context: the conventional identity');
    assert.deepEqual(x.nacks, []);
  });

  test('a split shifted on the server moves the next requests; an endpoint removed drains', async (t) => {
    const x = await startXdsResponder(t);
    const b = await backends();
    serve(x, b, [weighted([[cluster('v1'), 100], [cluster('v2'), 0]])]);
    const m = await client(x);
    for (let i = 0; i < 5; i++) assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1');
    const version = m.snapshot().version;
    x.set(RDS, ROUTES, routes([weighted([[cluster('v1'), 0], [cluster('v2'), 100]])]));
    x.push();
    await waitFor(() => m.snapshot().version !== version, 2_000, 'the pushed routes to be applied');
    for (let i = 0; i < 5; i++) assert.equal(await body(m, `http://${FQDN}:8080/`), 'v2');
    x.set(EDS, cluster('v2'), endpoints(cluster('v2'), []));
    x.push();
    await waitFor(() => m.snapshot().services.get(cluster('v2'))?.endpoints?.length === 0, 2_000, 'the endpoint removal');
    await assert.rejects(m.fetch(`http://${FQDN}:8080/`), (e: Error) => /no endpoints|NO_ENDPOINT/i.test(`${e.message} ${String((e.cause as { code?: string })?.code)}`));
  });

  test('a response the mesh cannot honour is NACKed whole; the last good config keeps serving', async (t) => {
    const x = await startXdsResponder(t);
    const b = await backends();
    serve(x, b, [toCluster('/', cluster('v1'))]);
    const m = await client(x);
    assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1');
    // A regex JavaScript would read differently (RE2's \C), and a ring-hash cluster.
    x.set(RDS, ROUTES, RouteConfigurationCodec.encode({ name: ROUTES, virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safeRegex: { regex: 'a\\Cb' } }, route: { cluster: cluster('v2') } }] }] } as never));
    x.push();
    await waitFor(() => x.nacks.length > 0, 2_000, 'the NACK');
    assert.match(x.nacks[0]!.errorDetail!.message, /RDS response .* rejected whole/);
    assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1', 'the last good routes stay');
  });

  test('the options\' services work alongside discovery; an IP or localhost host is not looked up', async (t) => {
    const x = await startXdsResponder(t);
    const b = await backends();
    serve(x, b, [toCluster('/', cluster('v1'))]);
    const inventory = await startReplica('inventory', ok, { service: 'inventory' });
    opened.push(inventory);
    const m = await client(x, { outbound: { services: { inventory: { endpoints: [inventory.address] } } } });
    assert.equal(await body(m, 'http://inventory/'), 'inventory', 'an options service, never asked for');
    assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1');
    assert.ok(!x.subscribed(LDS).some((n) => n.startsWith('inventory')), x.subscribed(LDS).join(', '));
    const before = x.subscribed(LDS).length;
    await assert.rejects(m.fetch('http://localhost:1/'));
    assert.equal(x.subscribed(LDS).length, before, 'localhost is never asked for');
    // mesh.set* change the options' part; the delivered services stay as they are.
    m.setService('billing', { endpoints: [inventory.address], identity: 'spiffe://cluster.local/ns/default/sa/inventory' });
    assert.equal(await body(m, 'http://billing/'), 'inventory');
    assert.throws(() => m.setService('billing', { endpoints: ['not an address'] }), /setService\("billing"\) rejected/);
    assert.equal(await body(m, 'http://billing/'), 'inventory', 'a rejected update changes nothing');
    assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1');
    assert.ok(m.snapshot().services.has(cluster('v1')));
  });

  test('a host the control plane removes follows the egress rule from the next request; a deleted mesh host is not sent as egress before that', async (t) => {
    const x = await startXdsResponder(t);
    const b = await backends();
    serve(x, b, [toCluster('/', cluster('v1'))]);
    // Every Listener candidate of gone.example:8080, then all removed: each is known not to exist.
    const candidates = ['gone.example.default.svc.cluster.local:8080', 'gone.example.svc.cluster.local:8080', 'gone.example.cluster.local:8080', 'gone.example:8080'];
    for (const c of candidates) x.set(LDS, c, listener(c));
    x.push();
    const m = await client(x, { outbound: { egress: 'deny', pendingTimeout: '1s' } });
    await assert.rejects(m.fetch('http://gone.example:8080/'), (e: Error) => (e.cause as { code?: string })?.code === 'ERR_SIDECARLESS_DISCOVERY_PENDING' || /pending|Discovery/i.test(String(e.cause)));
    for (const c of candidates) x.set(LDS, c, null);
    x.push();
    await waitFor(() => x.server.streams.at(-1)!.requests.filter((r) => r.typeUrl === LDS).length >= 3, 2_000, 'the deletion ACK');
    await assert.rejects(m.fetch('http://gone.example:8080/'), (e: Error) => (e.cause as { code?: string })?.code === 'ERR_SIDECARLESS_EGRESS_DENIED');
    assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1', 'the mesh host is unaffected');
  });

  test('a control plane that is down: discovered hosts fail closed (never egress); once configured, they keep working through an outage', async (t) => {
    const x = await startXdsResponder(t);
    const b = await backends();
    serve(x, b, [toCluster('/', cluster('v1'))]);
    const m = await client(x, { outbound: { egress: 'allow', pendingTimeout: '1s' } });
    assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1');
    await x.server.close();
    for (let i = 0; i < 3; i++) assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1', 'the last good config serves through the outage');
    const started = Date.now();
    await assert.rejects(
      m.fetch('http://inventory.default.svc.cluster.local:9090/'),
      (e: Error) => (e.cause as { code?: string })?.code === 'ERR_SIDECARLESS_DISCOVERY_PENDING',
    );
    assert.ok(Date.now() - started >= 900, 'it waited outbound.pendingTimeout (1 s) for an answer');
  });

  test('a control plane that was never reachable: the mesh starts, its options\' services serve, discovered hosts fail closed', async (t) => {
    const x = await startXdsResponder(t);
    const address = x.server.address;
    await x.server.close();
    const inventory = await startReplica('inventory', ok, { service: 'inventory' });
    opened.push(inventory);
    const m = await createMesh(
      { service: 'client', identity: { ca: await devCa() }, controlPlane: { address, root: x.server.rootFile, token: 'good-token' }, outbound: { pendingTimeout: '500ms', services: { inventory: { endpoints: [inventory.address] } } }, logger: quiet },
      { env: { INSTANCE_IP: '10.0.0.9' } },
    );
    opened.push(m);
    assert.equal(await body(m, 'http://inventory/'), 'inventory');
    await assert.rejects(m.fetch(`http://${FQDN}:8080/`), (e: Error) => (e.cause as { code?: string })?.code === 'ERR_SIDECARLESS_DISCOVERY_PENDING' && /Listener/.test(String((e.cause as Error).message)));
  });

  test('/config and `sidecarless stat` show each resource\'s version and ACK/NACK state, the last NACK with its error, the discovered hosts', { timeout: 60_000 }, async (t) => {
    const x = await startXdsResponder(t);
    const b = await backends();
    serve(x, b, [toCluster('/', cluster('v1'))]);
    const m = await client(x, { admin: { port: 0 } });
    assert.equal(await body(m, `http://${FQDN}:8080/`), 'v1');
    x.set(CDS, cluster('v1'), ClusterCodec.encode({ name: cluster('v1'), type: 3, lbPolicy: 2, edsClusterConfig: { edsConfig: { ads: {} } } }));
    x.push();
    await waitFor(() => x.nacks.length > 0, 2_000, 'the NACK');
    const admin = `http://127.0.0.1:${m.admin!.address().port}`;
    const config = (await (await fetch(`${admin}/config`)).json()) as { xds: { address: string; ads: { stream: { state: string }; types: Array<{ type: string; nacked: boolean; lastNack?: { message: string }; resources: Array<{ name: string; version: string }> }> }; hosts: Array<{ host: string; state: string; service?: string }> } };
    assert.equal(config.xds.address, x.server.address);
    assert.equal(config.xds.ads.stream.state, 'connected');
    const cds = config.xds.ads.types.find((ty) => ty.type === 'CDS')!;
    assert.equal(cds.nacked, true);
    assert.match(cds.lastNack!.message, /lb_policy: RING_HASH is not supported/);
    assert.deepEqual(cds.resources.map((r) => r.name), [cluster('v1')], 'the last good Cluster stays in force');
    assert.deepEqual(config.xds.hosts, [{ host: `${FQDN}:8080`, state: 'found', listener: LISTENER, service: `${FQDN}:8080` }]);
    const r = await sidecarless(['stat', '--admin', admin, '--interval', '100ms'], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    if (process.env.SHOW_STAT) console.log(r.stdout);
    assert.match(r.stdout, new RegExp(`XDS ${x.server.address.replace(/\./g, '\\.')}: stream connected`));
    assert.match(r.stdout, /CDS\s+outbound\|8080\|v1\|payments\.default\.svc\.cluster\.local\s+\d+\s+ACKED \(newer NACKED\)/);
    assert.match(r.stdout, /last CDS NACK .*still in force.*RING_HASH/);
    assert.match(r.stdout, /DISCOVERED HOSTS\n\s+HOST\s+STATE\s+SERVICE\n\s+payments\.default\.svc\.cluster\.local:8080\s+found/);
  });
});
