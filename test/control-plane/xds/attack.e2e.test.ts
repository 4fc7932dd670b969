// An outsider's attacks on outbound discovery over xDS, end to end: real ADS stream (TLS, token),
// real meshes over mTLS, real backends. Each test is one way a host could be routed to a service
// the control plane did not name for it, reach egress before discovery decided it, or freeze what
// was delivered.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createMesh, type Mesh } from '../../../src/mesh.js';
import { ClusterCodec } from '../../../src/proto/envoy/config/cluster/v3/cluster.js';
import { ClusterLoadAssignmentCodec } from '../../../src/proto/envoy/config/endpoint/v3/endpoint.js';
import { ListenerCodec } from '../../../src/proto/envoy/config/listener/v3/listener.js';
import { RouteConfigurationCodec } from '../../../src/proto/envoy/config/route/v3/route.js';
import { HttpConnectionManagerCodec } from '../../../src/proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { RouterCodec } from '../../../src/proto/envoy/extensions/filters/http/router/v3/router.js';
import { packAny } from '../../../src/proto/any-pack.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL as EDS,
  CLUSTER_TYPE_URL as CDS,
  LISTENER_TYPE_URL as LDS,
  ROUTE_CONFIGURATION_TYPE_URL as RDS,
} from '../../../src/control-plane/xds/discovery.js';
import { devCa, ok, quiet, startReplica, type Replica } from '../../outbound/e2e/replicas.js';
import { startXdsResponder, type XdsResponder } from '../../helpers/xds-responder.js';
import { okText, xdsClient } from '../../helpers/xds-istiod.js';
import { closeServer, listen, sleep, waitFor } from '../../helpers/net.js';
import { createServer } from 'node:http';

const FQDN = 'payments.default.svc.cluster.local';
const LISTENER = `${FQDN}:8080`;
const ROUTES = `outbound|8080||${FQDN}`;
const V1 = `outbound|8080|v1|${FQDN}`;

function listener(name = LISTENER, rds = ROUTES): Uint8Array {
  const hcm = { rds: { configSource: { ads: {} }, routeConfigName: rds }, httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: packAny(RouterCodec, {}) }] };
  return ListenerCodec.encode({ name, apiListener: { apiListener: packAny(HttpConnectionManagerCodec, hcm) } });
}
const DOMAINS = ['payments', 'payments:8080', 'payments.default', 'payments.default:8080', FQDN, `${FQDN}:8080`];
function routes(cluster: string, name = ROUTES, domains = DOMAINS, vhost = `${FQDN}:8080`): Uint8Array {
  return RouteConfigurationCodec.encode({ name, virtualHosts: [{ name: vhost, domains, routes: [{ match: { prefix: '/' }, route: { cluster } }] }] } as never);
}
function edsCluster(name: string): Uint8Array {
  return ClusterCodec.encode({ name, type: 3, edsClusterConfig: { edsConfig: { ads: {} }, serviceName: name } });
}
function endpoints(name: string, addresses: string[]): Uint8Array {
  const lbEndpoints = addresses.map((a) => {
    const [host, port] = a.split(':');
    return { endpoint: { address: { socketAddress: { address: host!, portValue: Number(port) } } } };
  });
  return ClusterLoadAssignmentCodec.encode({ clusterName: name, endpoints: [{ locality: { zone: 'z1' }, lbEndpoints }] } as never);
}

const opened: Array<{ close(): Promise<unknown> }> = [];
after(async () => {
  await Promise.all(opened.map((x) => x.close().catch(() => {})));
});

async function replica(name: string): Promise<Replica> {
  const r = await startReplica(name, ok, { service: name });
  opened.push(r);
  return r;
}

/** payments' tree: Listener → RouteConfiguration → `cluster` → its endpoints. */
function serve(x: XdsResponder, cluster: string, addresses: string[]): void {
  x.set(LDS, LISTENER, listener());
  x.set(RDS, ROUTES, routes(cluster));
  x.set(CDS, cluster, edsCluster(cluster));
  x.set(EDS, cluster, endpoints(cluster, addresses));
  x.push();
}

async function client(x: XdsResponder, extra: Record<string, unknown> = {}): Promise<Mesh> {
  const m = await xdsClient(x, extra);
  opened.push(m);
  return m;
}

const codeOf = (e: unknown) => ((e as Error).cause as { code?: string } | undefined)?.code;

const text = okText;

describe('attacks on outbound discovery', () => {
  test('a fully qualified host written with its root dot is routed like the same host without it, and poisons nothing', async (t) => {
    const x = await startXdsResponder(t);
    const v1 = await replica('payments');
    serve(x, V1, [v1.address]);
    const m = await client(x, { outbound: { pendingTimeout: '2s', egress: 'deny' } });
    assert.equal(await text(m, `http://${FQDN}.:8080/`), 'payments');
    assert.equal(await text(m, `http://${FQDN}:8080/`), 'payments');
  });

  test('a Cluster named like an options service: the discovered host never reaches the options service', async (t) => {
    const x = await startXdsResponder(t);
    const [v1, inventory] = await Promise.all([replica('payments'), replica('inventory')]);
    // The control plane names its own cluster "inventory", whose endpoint is payments' replica.
    serve(x, 'inventory', [v1.address]);
    const m = await client(x, { outbound: { pendingTimeout: '1s', services: { inventory: { endpoints: [inventory.address] } } } });
    assert.equal(await text(m, 'http://inventory/'), 'inventory');
    const answer = await m.fetch(`http://${FQDN}:8080/`).then((r) => r.text(), (e: Error) => `failed: ${codeOf(e) ?? e.message}`);
    assert.notEqual(answer, 'inventory', 'payments was sent to the options service "inventory", which the control plane never named for it');
    // It fails closed, saying why.
    await assert.rejects(m.fetch(`http://${FQDN}:8080/`), (e) => codeOf(e) === 'ERR_SIDECARLESS_DISCOVERY_PENDING' && /Cluster "inventory".*service of the options/.test(String((e as Error).cause)));
  });

  test('localhost follows the egress rule even once the table of discovered hosts is full (which fails the rest closed)', { timeout: 60_000 }, async (t) => {
    const x = await startXdsResponder(t);
    const m = await client(x, { outbound: { pendingTimeout: '50ms', egress: 'deny' } });
    const hosts = Array.from({ length: 1001 }, (_, i) => `http://h${i}.example.test/`);
    const codes = await Promise.all(hosts.map((h) => m.fetch(h).then(() => 'ok', (e) => codeOf(e))));
    assert.ok(codes.every((c) => c === 'ERR_SIDECARLESS_DISCOVERY_PENDING'), [...new Set(codes)].join(', '));
    await assert.rejects(m.fetch('http://localhost:3/'), (e) => codeOf(e) === 'ERR_SIDECARLESS_EGRESS_DENIED');
    // An IP literal is looked up (it may be a Listener's name): no room, so it fails closed.
    await assert.rejects(m.fetch('http://127.0.0.1:3/'), (e) => codeOf(e) === 'ERR_SIDECARLESS_DISCOVERY_PENDING');
  });

  test('a local update never freezes delivered services: not while it holds a host discovery bound, not after a delivered update was refused', async (t) => {
    const x = await startXdsResponder(t);
    const [v1, v2, legacy, other] = await Promise.all([replica('payments'), replica('payments'), replica('legacy'), replica('other')]);
    serve(x, V1, [v1.address]);
    const m = await client(x, { outbound: { pendingTimeout: '300ms' } });
    assert.equal(await text(m, `http://${FQDN}:8080/`), 'payments');
    const OTHER = 'other.default.svc.cluster.local';
    // A host the control plane does not serve yet: bound, pending.
    await assert.rejects(m.fetch(`http://${OTHER}:9090/`), (e) => codeOf(e) === 'ERR_SIDECARLESS_DISCOVERY_PENDING');
    // The app names that host itself, then the control plane starts serving it, and moves payments to v2.
    m.setService('legacy', { endpoints: [legacy.address], hostnames: [`${OTHER}:9090`], identity: 'spiffe://cluster.local/ns/default/sa/legacy' });
    const before = m.snapshot().version;
    x.set(LDS, `${OTHER}:9090`, listener(`${OTHER}:9090`, 'other-routes'));
    const OC = `outbound|9090||${OTHER}`;
    x.set(RDS, 'other-routes', routes(OC, 'other-routes', [`${OTHER}:9090`], `${OTHER}:9090`));
    x.set(CDS, OC, edsCluster(OC));
    x.set(EDS, OC, endpoints(OC, [other.address]));
    x.push();
    await waitFor(() => x.subscribed(EDS).includes(OC), 3_000, 'the other tree subscribed');
    await new Promise((r) => setTimeout(r, 200));
    x.set(EDS, V1, endpoints(V1, [v2.address]));
    x.push();
    await waitFor(() => m.snapshot().services.get(V1)?.endpoints?.[0]?.address === v2.address, 3_000, `payments moved to v2 (snapshot ${m.snapshot().version}, was ${before})`);
    assert.equal(await text(m, `http://${OTHER}:9090/`), 'legacy', 'the options\' service keeps the name the app gave it');
    // The app gives the name up: the delivered service takes it; payments still follows the server.
    m.setService('legacy', null);
    x.set(EDS, V1, endpoints(V1, [v1.address]));
    x.push();
    await waitFor(() => m.snapshot().services.get(V1)?.endpoints?.[0]?.address === v1.address, 3_000, 'payments moved back to v1');
    await waitFor(async () => (await m.fetch(`http://${OTHER}:9090/`).then((r) => r.text(), () => '')) === 'other', 3_000, 'other is routed by the control plane');
  });

  test('held in discovery: an abort ends the wait at once; closing the mesh fails held requests at once', async (t) => {
    const x = await startXdsResponder(t);
    const m = await client(x, { outbound: { pendingTimeout: '20s' } });
    const ac = new AbortController();
    const started = Date.now();
    const aborted = m.fetch('http://never.default.svc.cluster.local:8080/', { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(aborted, (e: Error) => e.name === 'AbortError');
    assert.ok(Date.now() - started < 2_000, `the abort took ${Date.now() - started} ms`);
    const held = m.fetch('http://never2.default.svc.cluster.local:8080/').then(() => 'answered', (e) => codeOf(e) ?? String(e));
    await sleep(100);
    const closing = Date.now();
    await m.close();
    assert.equal(await held, 'ERR_SIDECARLESS_MESH_CLOSED');
    assert.ok(Date.now() - closing < 2_000, `the held request outlived close() by ${Date.now() - closing} ms`);
  });

  test('many first requests to one new host at once: one subscription, every one answered', async (t) => {
    const x = await startXdsResponder(t);
    const v1 = await replica('payments');
    serve(x, V1, [v1.address]);
    const m = await client(x, { outbound: { pendingTimeout: '5s' } });
    const answers = await Promise.all(Array.from({ length: 50 }, () => text(m, `http://payments:8080/`)));
    assert.deepEqual(new Set(answers), new Set(['payments']));
    const lds = x.server.streams.at(-1)!.requests.filter((r) => r.typeUrl === LDS && r.errorDetail === undefined);
    assert.ok(lds.length <= 4, `${lds.length} LDS requests for one host`);
  });

  test('a streamed POST body survives the hold: routed to the discovered service, or relayed to egress once the host is known absent', async (t) => {
    const x = await startXdsResponder(t);
    const echo = async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      let b = '';
      for await (const c of req) b += c;
      res.end(`got ${b}`);
    };
    const v1 = await replica('payments'); // reads the body itself: its size is in bodySizes
    serve(x, V1, [v1.address]);
    const plain = createServer((req, res) => void echo(req, res));
    const port = await listen(plain);
    t.after(() => closeServer(plain));
    // An IP literal is looked up as written: one Listener, served, then removed (known absent).
    const gone = [`127.0.0.1:${port}`];
    for (const c of gone) x.set(LDS, c, listener(c));
    x.push();
    const m = await client(x, { outbound: { pendingTimeout: '1s', egress: 'allow' } });
    const stream = () => new ReadableStream({ async start(c) { c.enqueue(new TextEncoder().encode('part1 ')); await sleep(50); c.enqueue(new TextEncoder().encode('part2')); c.close(); } });
    const post = (url: string) => m.fetch(url, { method: 'POST', body: stream(), duplex: 'half' } as RequestInit).then((r) => r.text());
    assert.equal(await post(`http://${FQDN}:8080/`), 'payments');
    assert.deepEqual(v1.bodySizes, ['part1 part2'.length]);
    await assert.rejects(m.fetch(`http://127.0.0.1:${port}/`), (e) => codeOf(e) === 'ERR_SIDECARLESS_DISCOVERY_PENDING');
    for (const c of gone) x.set(LDS, c, null);
    x.push();
    await waitFor(() => m.stats !== undefined && (x.server.streams.at(-1)!.requests.filter((r) => r.typeUrl === LDS).length >= 3), 2_000, 'the deletion ACK');
    assert.equal(await post(`http://127.0.0.1:${port}/`), 'got part1 part2');
  });

  test('a hostile size: 20,000 virtual hosts with a `*` among them, a 100 kB Cluster name; the named host routed as said, others untouched, nothing crashes', { timeout: 60_000 }, async (t) => {
    const x = await startXdsResponder(t);
    const [v1, other] = await Promise.all([replica('payments'), replica('other')]);
    const big = `outbound|8080|v1|${FQDN}|${'x'.repeat(100_000)}`;
    const virtualHosts: object[] = Array.from({ length: 20_000 }, (_, i) => ({ name: `vh${i}`, domains: [`h${i}.example:8080`], routes: [{ match: { prefix: '/' }, route: { cluster: 'nowhere' } }] }));
    virtualHosts.push({ name: `${FQDN}:8080`, domains: [`${FQDN}:8080`], routes: [{ match: { prefix: '/' }, route: { cluster: big } }] });
    virtualHosts.push({ name: 'catch-all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'nowhere' } }] });
    x.set(LDS, LISTENER, listener());
    x.set(RDS, ROUTES, RouteConfigurationCodec.encode({ name: ROUTES, virtualHosts } as never));
    x.set(CDS, big, ClusterCodec.encode({ name: big, type: 3, edsClusterConfig: { edsConfig: { ads: {} }, serviceName: 'big-eds' }, transportSocket: undefined } as never));
    x.set(EDS, 'big-eds', endpoints('big-eds', [v1.address]));
    // Another service of the app, on its own Listener and RouteConfiguration.
    const OTHER = 'other.default.svc.cluster.local:9090';
    const OC = 'outbound|9090||other.default.svc.cluster.local';
    x.set(LDS, OTHER, listener(OTHER, 'other-routes'));
    x.set(RDS, 'other-routes', routes(OC, 'other-routes', [OTHER], OTHER));
    x.set(CDS, OC, edsCluster(OC));
    x.set(EDS, OC, endpoints(OC, [other.address]));
    x.push();
    const m = await client(x, { outbound: { pendingTimeout: '10s' } });
    const started = Date.now();
    assert.equal(await text(m, `http://${FQDN}:8080/`), 'payments');
    assert.ok(Date.now() - started < 5_000, `discovered in ${Date.now() - started} ms`);
    assert.equal(await text(m, `http://${OTHER}/`), 'other', 'the catch-all of one table takes no host of another');
    assert.deepEqual(x.nacks, []);
  });

  test('options services resolve the same with discovery as without: default and explicit ports, http and https, a root dot, upper case, wildcards', { timeout: 60_000 }, async (t) => {
    const x = await startXdsResponder(t);
    const [pay, api, shop] = await Promise.all([replica('payments'), replica('api'), replica('shop')]);
    const services = {
      payments: { endpoints: [pay.address] },
      api: { endpoints: [api.address], hostnames: ['api.example.com', 'api.example.com:8443'], identity: 'spiffe://cluster.local/ns/default/sa/api' },
      shop: { endpoints: [shop.address], hostnames: ['*.shop.test'], identity: 'spiffe://cluster.local/ns/default/sa/shop' },
    };
    const urls = [
      'http://payments/', 'https://payments/', 'http://payments:8080/', 'http://PAYMENTS.default/', 'http://payments.default.svc.cluster.local./',
      'https://payments.default.svc.cluster.local.:8443/', 'http://api.example.com/', 'https://api.example.com:8443/', 'http://API.example.com.:8443/',
      'http://a.shop.test/', 'https://b.shop.test:9443/', 'http://shop.test/',
    ];
    const plain = await createMesh({ service: 'client', identity: { ca: await devCa() }, logger: quiet, outbound: { services, egress: 'deny' } });
    opened.push(plain);
    const withXds = await client(x, { outbound: { services, egress: 'deny', pendingTimeout: '200ms' } });
    const answer = (m: Mesh, u: string) => m.fetch(u).then((r) => r.text(), (e) => (codeOf(e) === 'ERR_SIDECARLESS_DISCOVERY_PENDING' || codeOf(e) === 'ERR_SIDECARLESS_EGRESS_DENIED' ? 'not a mesh service' : `failed ${codeOf(e) ?? e}`));
    const a = await Promise.all(urls.map((u) => answer(plain, u)));
    const b = await Promise.all(urls.map((u) => answer(withXds, u)));
    assert.ok(['payments', 'api', 'shop', 'not a mesh service'].every((n) => a.includes(n)), a.join(', '));
    assert.deepEqual(Object.fromEntries(urls.map((u, i) => [u, b[i]])), Object.fromEntries(urls.map((u, i) => [u, a[i]])));
  });

  test('routes naming a Cluster that never arrives: the host waits and fails closed, never egress; once it is known gone, an abort ends the wait for it at once', { timeout: 30_000 }, async (t) => {
    const x = await startXdsResponder(t);
    x.set(LDS, LISTENER, listener());
    x.set(RDS, ROUTES, routes('never'));
    x.push();
    const m = await client(x, { outbound: { pendingTimeout: '500ms', egress: 'allow' } });
    await assert.rejects(m.fetch(`http://${FQDN}:8080/`), (e) => codeOf(e) === 'ERR_SIDECARLESS_DISCOVERY_PENDING' && /Clusters and endpoints/.test(String((e as Error).cause)));
    // The Cluster arrives, then goes: known not to exist, the front is built without it.
    x.set(CDS, 'never', edsCluster('never'));
    x.push();
    await waitFor(() => x.subscribed(EDS).includes('never'), 3_000, 'the Cluster delivered');
    x.set(CDS, 'never', null);
    x.push();
    await waitFor(() => m.snapshot().services.has(`${FQDN}:8080`) && !m.snapshot().services.has('never'), 3_000, 'the front built without it');
    const ac = new AbortController();
    const started = Date.now();
    const p = m.fetch(`http://${FQDN}:8080/`, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(p, (e: Error) => e.name === 'AbortError');
    assert.ok(Date.now() - started < 400, `the abort took ${Date.now() - started} ms`);
    await assert.rejects(m.fetch(`http://${FQDN}:8080/`), (e) => codeOf(e) === 'ERR_SIDECARLESS_CONFIG_PENDING');
  });

  test('a server that flaps the Cluster, the routes and the Listener every few ms: every request is routed by what the server named or fails closed, never egress, nothing crashes', { timeout: 30_000 }, async (t) => {
    const x = await startXdsResponder(t);
    const [v1, v2] = await Promise.all([replica('payments'), replica('payments')]);
    const V2 = `outbound|8080|v2|${FQDN}`;
    serve(x, V1, [v1.address]);
    x.set(CDS, V2, edsCluster(V2));
    x.set(EDS, V2, endpoints(V2, [v2.address]));
    x.push();
    const m = await client(x, { outbound: { pendingTimeout: '2s', egress: 'allow' } });
    assert.equal(await text(m, `http://${FQDN}:8080/`), 'payments');
    let flips = 0;
    const flapping = setInterval(() => {
      flips++;
      if (flips % 3 === 0) x.set(CDS, V1, flips % 2 ? null : edsCluster(V1));
      if (flips % 3 === 1) x.set(RDS, ROUTES, routes(flips % 2 ? V2 : V1));
      if (flips % 3 === 2) x.set(LDS, LISTENER, flips % 4 === 2 ? null : listener());
      x.push();
    }, 3);
    const outcomes = new Map<string, number>();
    const until = Date.now() + 1_500;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (Date.now() < until) {
        const o = await m.fetch(`http://${FQDN}:8080/`).then(async (r) => `${r.status} ${await r.text()}`, (e) => codeOf(e) ?? `not ours: ${String((e as Error).cause ?? e)}`);
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      }
    }));
    clearInterval(flapping);
    if (process.env.SHOW_FLAPS) console.log(flips, Object.fromEntries(outcomes));
    const seen = [...outcomes.keys()];
    assert.ok(seen.every((o) => o === '200 payments' || o.startsWith('ERR_SIDECARLESS_')), JSON.stringify(Object.fromEntries(outcomes)));
    assert.ok(outcomes.get('200 payments')! > 0, JSON.stringify(Object.fromEntries(outcomes)));
    // Settled: routed again.
    serve(x, V1, [v1.address]);
    await waitFor(async () => (await m.fetch(`http://${FQDN}:8080/`).then((r) => r.status, () => 0)) === 200, 5_000, 'routed once the server settles');
  });

  test('a host that is no plain name (a wildcard, a `!`) is never bound: it follows the egress rule at once, and a Listener served for it routes nothing', async (t) => {
    const x = await startXdsResponder(t);
    const v1 = await replica('payments');
    // A hostile server serves the Listener a wildcard host would ask for, routed to payments' backend.
    const wild = '*.example.test.default.svc.cluster.local:80';
    x.set(LDS, wild, listener(wild));
    x.set(RDS, ROUTES, routes(V1, ROUTES, ['*']));
    x.set(CDS, V1, edsCluster(V1));
    x.set(EDS, V1, endpoints(V1, [v1.address]));
    x.push();
    const m = await client(x, { outbound: { pendingTimeout: '2s', egress: 'deny' } });
    for (const u of ['http://*.example.test/', 'http://a!b.test/']) {
      const started = Date.now();
      await assert.rejects(m.fetch(u), (e) => codeOf(e) === 'ERR_SIDECARLESS_EGRESS_DENIED', u);
      assert.ok(Date.now() - started < 1_000, `${u}: ${Date.now() - started} ms`);
    }
    assert.deepEqual(x.subscribed(LDS), [], 'nothing was asked for');
    assert.equal([...m.snapshot().services.values()].some((s) => s.hostnames.some((h) => h.includes('*'))), false);
  });
});

