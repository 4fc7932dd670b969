// A mesh configured with `controlPlane.linkerd` against the scripted Linkerd controllers on the
// Python stack (test/helpers/py/linkerd_identity.py, linkerd_policy.py: grpcio, python3-cryptography,
// one trust anchor and issuer): every mesh gets its DNS-like certificate by Certify; the client's
// `mesh.fetch('http://api.default.svc.cluster.local:8080/…')` follows OutboundPolicies.Watch and
// Destination.Get to endpoints that are real mesh servers with DNS identities, over mutual TLS
// with SNI = server_name; each server's port follows its WatchPort policy. Changes are pushed
// mid-traffic and must be applied, refused ones must leave the last good state (how fast: bench/linkerd.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Server } from 'node:https';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TLSSocket } from 'node:tls';
import { createMesh, peerOf, type Mesh } from '../../../src/index.js';
import { startLinkerdIdentity, type LinkerdIdentityServer } from '../../helpers/linkerd-identity-server.js';
import { startLinkerdPolicyServer, type LinkerdPolicyServer } from '../../helpers/linkerd-policy-server.js';
import { makeTempDir } from '../../helpers/tmp.js';

const DOMAIN = 'identity.linkerd.cluster.local';
const nameOf = (sa: string) => `${sa}.default.serviceaccount.${DOMAIN}`;
const API = 'api.default.svc.cluster.local:8080';
const API_V2 = 'api-v2.default.svc.cluster.local:8080';
const silent = process.env.LINKERD_E2E_DEBUG ? { info() {}, warn: (m: string) => console.error('WARN', m), error: (m: string) => console.error('ERROR', m) } : { info() {}, warn() {}, error() {} };

// Linkerd's messages in protobuf's JSON mapping (the Python server parses them with json_format).
const backend = (path: string, weight: number) => ({ backend: { backend: { balancer: { discovery: { dst: { path } }, peakEwma: { defaultRtt: '0.030s', decay: '10s' } } } }, weight });
const rule = (prefix: string, backends: object[], extra: object = {}) => ({ matches: [{ path: { prefix } }], backends: { randomAvailable: { backends } }, ...extra });
const outbound = (...rules: object[]) => ({ protocol: { http1: { routes: [{ metadata: { default: 'http' }, rules }] } } });
const endpoint = (port: number, identity: string, serverName = identity) => ({ addr: { ip: { ipv4: 0x7f000001 }, port }, weight: 10000, tlsIdentity: { dnsLikeIdentity: { name: identity }, serverName: { name: serverName } } });
const add = (...addrs: object[]) => ({ add: { addrs } });
const everywhere = [{ net: { ip: { ipv4: 0 }, prefixLen: 0 } }, { net: { ip: { ipv6: { first: '0', last: '0' } }, prefixLen: 0 } }];
const allowIdentities = (...names: string[]) => ({
  protocol: { detect: { timeout: '10s', httpRoutes: [] } },
  authorizations: names.length === 0 ? [] : [{ networks: everywhere, authentication: { meshTLS: { identities: { identities: names.map((name) => ({ name })) } } }, metadata: { default: 'allow' } }],
});

interface Backend {
  readonly name: string;
  readonly mesh: Mesh;
  readonly server: Server;
  readonly port: number;
  readonly seen: Array<{ sni: string | false | null; peer: string | undefined; path: string }>;
  /** Per-path behaviour: a status sequence, a delay. */
  readonly script: Map<string, { statuses?: number[]; delayMs?: number }>;
}

describe('controlPlane.linkerd end to end', { timeout: 120_000 }, () => {
  const cleanups: Array<() => Promise<void>> = [];
  const t = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
  const dir = makeTempDir('sidecarless-linkerd-e2e-');
  let id: LinkerdIdentityServer;
  let cp: LinkerdPolicyServer;
  let web: Mesh;
  let intruder: Mesh;
  const backends: Record<string, Backend> = {};

  const linkerd = async (sa: string, pod: string) => {
    const token = join(dir.dir, `${pod}.token`);
    await writeFile(token, `tok-${sa}`);
    return {
      trustAnchors: { file: id.anchorsFile },
      token: { file: token },
      identity: { address: id.address, serverName: id.serverName },
      destination: { address: cp.address },
      policy: { address: cp.address },
      workload: { namespace: 'default', pod },
    };
  };

  const startBackend = async (name: string, sa: string): Promise<Backend> => {
    const mesh = await createMesh({ service: sa, logger: silent, controlPlane: { linkerd: await linkerd(sa, name) } });
    const seen: Backend['seen'] = [];
    const script: Backend['script'] = new Map();
    const server = mesh.createServer((req, res) => {
      seen.push({ sni: (req.socket as TLSSocket).servername, peer: peerOf(req)?.id, path: req.url ?? '' });
      const s = script.get(req.url ?? '');
      const status = s?.statuses?.shift() ?? 200;
      setTimeout(() => res.writeHead(status).end(name), s?.delayMs ?? 0);
    }) as Server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const b = { name, mesh, server, port, seen, script };
    backends[name] = b;
    return b;
  };

  before(async () => {
    id = await startLinkerdIdentity(t, {
      tokens: { 'tok-web': { ns: 'default', sa: 'web' }, 'tok-api': { ns: 'default', sa: 'api' }, 'tok-api-v2': { ns: 'default', sa: 'api-v2' }, 'tok-intruder': { ns: 'default', sa: 'intruder' } },
    });
    cp = await startLinkerdPolicyServer(undefined, undefined, id.dir);
    cleanups.push(() => cp.close());
    await Promise.all([startBackend('api-1', 'api'), startBackend('api-2', 'api'), startBackend('api-v2', 'api-v2')]);
    for (const b of Object.values(backends)) await cp.send({ cmd: 'set', rpc: 'WatchPort', key: String(b.port), json: allowIdentities(nameOf('web')) });
    web = await createMesh({ service: 'web', logger: silent, controlPlane: { linkerd: await linkerd('web', 'web-1') } });
    intruder = await createMesh({ service: 'intruder', logger: silent, outbound: { egress: 'deny' }, controlPlane: { linkerd: await linkerd('intruder', 'intruder-1') } });
    await cp.send({ cmd: 'set', rpc: 'Watch', key: API, json: outbound(rule('/', [backend(API, 100), backend(API_V2, 0)])) });
    await cp.send({ cmd: 'set', rpc: 'Get', key: API, json: add(endpoint(backends['api-1']!.port, nameOf('api'))) });
    await cp.send({ cmd: 'set', rpc: 'Get', key: API_V2, json: add(endpoint(backends['api-v2']!.port, nameOf('api-v2'))) });
  });

  after(async () => {
    await Promise.allSettled([web?.close(), intruder?.close(), ...Object.values(backends).map(async (b) => (b.server.close(), await b.mesh.close()))]);
    for (const c of cleanups.reverse()) await c();
    await dir.remove();
  });

  const get = async (m: Mesh, path: string) => {
    const res = await m.fetch(`http://${API}${path}`);
    return { status: res.status, body: await res.text() };
  };
  const frontSplit = (m: Mesh) => m.snapshot().services.get(API)?.routes[0]?.split?.map((s) => `${s.service}=${s.weight}`).join(',');

  test('each mesh holds its DNS-like certificate from Certify; the client reaches the endpoint Destination names, over mTLS with SNI = server_name', async () => {
    assert.equal(web.identity.getX509Svid().chain[0]!.dnsNames[0], nameOf('web'));
    assert.equal(web.dnsName, nameOf('web'));
    assert.equal(web.stats().dnsName, nameOf('web'), 'stats() names the identity the mesh runs as');
    assert.ok(id.calls.some((c) => c.identity === nameOf('web') && c.code === 'OK'), JSON.stringify(id.calls.map((c) => [c.identity, c.code])));
    const before = backends['api-1']!.seen.length;
    assert.deepEqual(await get(web, '/hello'), { status: 200, body: 'api-1' });
    const seen = backends['api-1']!.seen.slice(before);
    assert.deepEqual(seen, [{ sni: nameOf('api'), peer: nameOf('web'), path: '/hello' }]);
    assert.equal(web.snapshot().source, `linkerd:${cp.address}`);
    const st = web.stats().linkerd!;
    assert.deepEqual(st.authorities.map((a) => [a.authority, a.state]), [[API, 'found']]);
    assert.deepEqual(st.destinations.map((d) => [d.path, d.status, d.endpoints]).sort(), [[API, 'ready', 1], [API_V2, 'ready', 1]].sort());
    const watch = cp.requests('Watch').find((e) => e.key === API)!;
    assert.deepEqual(watch.fields, { source_workload: '{"ns":"default","pod":"web-1"}', authority: API });
    assert.deepEqual(watch.peer, [nameOf('web')], 'the policy controller saw the workload certificate');
    const get1 = cp.requests('Get').find((e) => e.key === API)!;
    assert.equal(get1.fields!.context_token, '{"ns":"default","pod":"web-1"}');
    const port = cp.requests('WatchPort').find((e) => e.key === String(backends['api-1']!.port))!;
    assert.deepEqual(port.fields, { workload: '{"ns":"default","pod":"api-1"}', port: backends['api-1']!.port });
  });

  test('a split shifts mid-traffic: 100/0, then 0/100, each applied (the next requests follow it)', async (tc) => {
    for (let i = 0; i < 5; i++) assert.equal((await get(web, '/split')).body, 'api-1');
    const timings: number[] = [];
    for (const [v1, v2] of [[0, 100], [100, 0], [0, 100]] as const) {
      const want = `${API}=${v1},backend:${API_V2}=${v2}`;
      // From before the command (an upper bound: it includes the command's trip to the Python server).
      const acked = performance.now();
      await cp.send({ cmd: 'push', rpc: 'Watch', key: API, json: outbound(rule('/', [backend(API, v1), backend(API_V2, v2)])) });
      while (frontSplit(web) !== want) {
        if (performance.now() - acked > 2000) assert.fail(`split not applied: ${frontSplit(web)}`);
        await new Promise((r) => setImmediate(r));
      }
      timings.push(performance.now() - acked);
    }
    tc.diagnostic(`push → applied: ${timings.map((x) => x.toFixed(1)).join(', ')} ms (measured, not judged: bench/linkerd.ts)`);
    for (let i = 0; i < 5; i++) assert.equal((await get(web, '/split')).body, 'api-v2');
    await cp.send({ cmd: 'set', rpc: 'Watch', key: API, json: outbound(rule('/', [backend(API, 90), backend(API_V2, 10)])) });
    while (frontSplit(web) !== `${API}=90,backend:${API_V2}=10`) await new Promise((r) => setTimeout(r, 5));
    const bodies = await Promise.all(Array.from({ length: 60 }, () => get(web, '/split').then((r) => r.body)));
    const v2 = bodies.filter((b) => b === 'api-v2').length;
    assert.ok(v2 >= 1 && v2 <= 20, `90/10 over 60 requests sent ${v2} to api-v2`);
  });

  test("a route's retry and timeout apply", async () => {
    await cp.send({
      cmd: 'set',
      rpc: 'Watch',
      key: API,
      json: outbound(
        rule('/', [backend(API, 100)]),
        rule('/flaky', [backend(API, 100)], { retry: { maxRetries: 2, conditions: { statusRanges: [{ start: 500, end: 599 }] }, backoff: { minBackoff: '0.001s', maxBackoff: '0.005s' } } }),
        rule('/slow', [backend(API, 100)], { timeouts: { request: '0.2s' } }),
      ),
    });
    while (web.snapshot().services.get(API)?.routes.length !== 3) await new Promise((r) => setTimeout(r, 5));
    backends['api-1']!.script.set('/flaky', { statuses: [503, 503] });
    const n = backends['api-1']!.seen.length;
    assert.deepEqual(await get(web, '/flaky'), { status: 200, body: 'api-1' });
    assert.equal(backends['api-1']!.seen.slice(n).filter((s) => s.path === '/flaky').length, 3, 'two retries, then the success');
    backends['api-1']!.script.set('/slow', { delayMs: 2000 });
    const t0 = performance.now();
    const slow = await get(web, '/slow').catch((e: Error) => ({ status: 0, body: String((e.cause as { code?: string })?.code ?? e) }));
    const took = performance.now() - t0;
    assert.ok(took < 1500, `the 200 ms route timeout fired after ${took.toFixed(0)} ms`);
    assert.ok(slow.status === 504 || /TIMEOUT/.test(slow.body), JSON.stringify(slow));
    backends['api-1']!.script.delete('/slow');
  });

  test('an endpoint removed mid-traffic gets no more requests; no_endpoints fails with ERR_SIDECARLESS_NO_ENDPOINT', async () => {
    await cp.send({ cmd: 'set', rpc: 'Watch', key: API, json: outbound(rule('/', [backend(API, 100)])) });
    await cp.send({ cmd: 'push', rpc: 'Get', key: API, json: add(endpoint(backends['api-2']!.port, nameOf('api'))) });
    const endpoints = () => web.snapshot().services.get(API)?.endpoints?.map((e) => e.address).sort().join(',');
    const both = [backends['api-1']!.port, backends['api-2']!.port].map((p) => `127.0.0.1:${p}`).sort().join(',');
    while (endpoints() !== both || web.snapshot().services.get(API)?.routes.length !== 1) await new Promise((r) => setTimeout(r, 5));
    const traffic = Promise.all(Array.from({ length: 40 }, (_, i) => new Promise((r) => setTimeout(r, i * 5)).then(() => get(web, '/rm'))));
    await new Promise((r) => setTimeout(r, 60));
    await cp.send({ cmd: 'push', rpc: 'Get', key: API, json: { remove: { addrs: [{ ip: { ipv4: 0x7f000001 }, port: backends['api-1']!.port }] } } });
    const removedAt = backends['api-1']!.seen.length;
    const results = await traffic;
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results));
    while (endpoints() !== `127.0.0.1:${backends['api-2']!.port}`) await new Promise((r) => setTimeout(r, 5));
    const n1 = backends['api-1']!.seen.length;
    for (let i = 0; i < 10; i++) assert.equal((await get(web, '/after-remove')).body, 'api-2');
    assert.equal(backends['api-1']!.seen.length, n1, 'the removed endpoint got requests');
    assert.ok(n1 - removedAt <= 2, 'at most what was in flight');
    // Redundant and reordered: a remove of an unknown address and a duplicate add change nothing.
    await cp.send({ cmd: 'push', rpc: 'Get', key: API, json: { remove: { addrs: [{ ip: { ipv4: 0x7f000001 }, port: 1 }] } } });
    await cp.send({ cmd: 'push', rpc: 'Get', key: API, json: add(endpoint(backends['api-2']!.port, nameOf('api'))) });
    assert.equal((await get(web, '/dup')).body, 'api-2');
    await cp.send({ cmd: 'push', rpc: 'Get', key: API, json: { noEndpoints: { exists: true } } });
    while (endpoints() !== '') await new Promise((r) => setTimeout(r, 5));
    await assert.rejects(get(web, '/none'), (e: Error & { cause?: { code?: string } }) => e.cause?.code === 'ERR_SIDECARLESS_NO_ENDPOINT');
    await cp.send({ cmd: 'set', rpc: 'Get', key: API, json: add(endpoint(backends['api-1']!.port, nameOf('api'))) });
    await cp.send({ cmd: 'push', rpc: 'Get', key: API, json: add(endpoint(backends['api-1']!.port, nameOf('api'))) });
    while (endpoints() !== `127.0.0.1:${backends['api-1']!.port}`) await new Promise((r) => setTimeout(r, 5));
  });

  test('a refused OutboundPolicy leaves the last good one in force', async () => {
    const before = web.snapshot().services.get(API);
    await cp.send({ cmd: 'push', rpc: 'Watch', key: API, json: outbound(rule('/', [backend(API, 100)], { filters: [{ failureInjector: { status: 500 } }] })) });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(web.snapshot().services.get(API), before, 'the refused policy changed the service');
    assert.equal((await get(web, '/still')).body, 'api-1');
    const st = web.stats().linkerd!.authorities.find((a) => a.authority === API)!;
    assert.equal(st.state, 'found');
    assert.match(st.lastError ?? '', /filters\[0\]: the failureInjector filter is not supported/);
  });

  test('inbound: WatchPort allows one DNS identity and denies another; a change applies mid-traffic; no authorizations deny all', async () => {
    const port = String(backends['api-1']!.port);
    assert.equal((await get(web, '/in')).status, 200);
    assert.equal((await get(intruder, '/in')).status, 403, 'an identity the Server does not authorize');
    await cp.send({ cmd: 'push', rpc: 'WatchPort', key: port, json: allowIdentities(nameOf('web'), nameOf('intruder')) });
    const deadline = Date.now() + 2000;
    let status = 0;
    while ((status = (await get(intruder, '/in')).status) !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(status, 200, 'the widened authorization applied');
    // A suffix that matches the intruder's name only as a string ("…ruder.default…" inside "intruder.default…"), not label-wise.
    const trick = DOMAIN.split('.');
    await cp.send({
      cmd: 'push',
      rpc: 'WatchPort',
      key: port,
      json: { ...allowIdentities(), authorizations: [{ networks: everywhere, authentication: { meshTLS: { identities: { suffixes: [{ parts: ['ruder', 'default', 'serviceaccount', ...trick] }] } } } }] },
    });
    while ((status = (await get(web, '/in')).status) !== 403 && Date.now() < deadline + 2000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(status, 403, 'the suffix Server applied (web is not under it)');
    assert.equal((await get(intruder, '/in')).status, 403, 'a suffix matched by a string trick admitted the intruder');
    await cp.send({
      cmd: 'push',
      rpc: 'WatchPort',
      key: port,
      json: { ...allowIdentities(), authorizations: [{ networks: everywhere, authentication: { meshTLS: { identities: { suffixes: [{ parts: ['default', 'serviceaccount', ...trick] }] } } } }] },
    });
    while ((status = (await get(intruder, '/in')).status) !== 200 && Date.now() < deadline + 4000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(status, 200, 'a label-wise suffix of the namespace admits its workloads');
    await cp.send({ cmd: 'push', rpc: 'WatchPort', key: port, json: allowIdentities() });
    while ((status = (await get(web, '/in')).status) !== 403 && Date.now() < deadline + 6000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(status, 403, 'a Server without authorizations permits nothing');
    assert.equal((await get(intruder, '/in')).status, 403);
    await cp.send({ cmd: 'set', rpc: 'WatchPort', key: port, json: allowIdentities(nameOf('web')) });
    await cp.send({ cmd: 'push', rpc: 'WatchPort', key: port, json: allowIdentities(nameOf('web')) });
    while ((await get(web, '/in')).status !== 200) await new Promise((r) => setTimeout(r, 5));
  });

  test('inbound: a port whose Server has not arrived answers 503 with Retry-After', async () => {
    const b = await startBackend('api-3', 'api');
    await cp.send({ cmd: 'set', rpc: 'Watch', key: 'pending.default.svc.cluster.local:8080', json: outbound(rule('/', [backend('pending.default.svc.cluster.local:8080', 100)])) });
    await cp.send({ cmd: 'set', rpc: 'Get', key: 'pending.default.svc.cluster.local:8080', json: add(endpoint(b.port, nameOf('api'))) });
    const res = await web.fetch('http://pending.default.svc.cluster.local:8080/');
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    await res.text();
    await cp.send({ cmd: 'push', rpc: 'WatchPort', key: String(b.port), json: allowIdentities(nameOf('web')) });
    await cp.send({ cmd: 'set', rpc: 'WatchPort', key: String(b.port), json: allowIdentities(nameOf('web')) });
    let status = 0;
    for (let i = 0; i < 200 && status !== 200; i++) {
      const r = await web.fetch('http://pending.default.svc.cluster.local:8080/');
      status = r.status;
      await r.text();
    }
    assert.equal(status, 200);
  });

  test('security: a destination identity outside the trust anchors, or a server presenting another identity, is refused', async () => {
    const foreign = 'api.default.serviceaccount.identity.linkerd.attacker.io';
    await cp.send({ cmd: 'set', rpc: 'Watch', key: 'evil.default.svc.cluster.local:8080', json: outbound(rule('/', [backend('evil.default.svc.cluster.local:8080', 100)])) });
    await cp.send({ cmd: 'set', rpc: 'Get', key: 'evil.default.svc.cluster.local:8080', json: add(endpoint(backends['api-1']!.port, foreign)) });
    const n = backends['api-1']!.seen.length;
    await assert.rejects(web.fetch('http://evil.default.svc.cluster.local:8080/'), (e: Error) => e instanceof Error);
    // api-v2 presents api-v2's identity where Destination promised api's.
    await cp.send({ cmd: 'set', rpc: 'Watch', key: 'swap.default.svc.cluster.local:8080', json: outbound(rule('/', [backend('swap.default.svc.cluster.local:8080', 100)])) });
    await cp.send({ cmd: 'set', rpc: 'Get', key: 'swap.default.svc.cluster.local:8080', json: add(endpoint(backends['api-v2']!.port, nameOf('api'))) });
    const m = backends['api-v2']!.seen.length;
    await assert.rejects(web.fetch('http://swap.default.svc.cluster.local:8080/'), (e: Error & { cause?: { code?: string } }) => /PEER_IDENTITY|SVID|identity/i.test(`${e.cause?.code} ${String(e.cause)}`));
    assert.equal(backends['api-1']!.seen.length, n, 'the foreign-identity endpoint was served a request');
    assert.equal(backends['api-v2']!.seen.length, m, 'the swapped endpoint was served a request');
  });

  test('an authority Linkerd does not know is absent: the egress rule applies', async () => {
    const host = 'nowhere.default.svc.cluster.local:8080';
    const answer = intruder.fetch(`http://${host}/`).catch((e: Error) => e);
    // The close reaches open streams only: wait for the Watch, then end it with NOT_FOUND.
    await cp.waitFor((e) => e.event === 'request' && e.rpc === 'Watch' && e.key === host);
    await cp.send({ cmd: 'close', rpc: 'Watch', key: host, code: 'NOT_FOUND', details: 'no such service' });
    const r = await answer;
    assert.ok(r instanceof Error, String(r));
    assert.equal((r.cause as { code?: string })?.code, 'ERR_SIDECARLESS_EGRESS_DENIED', String(r.cause));
    assert.ok(!intruder.snapshot().services.has(host));
  });
});
