// sidecarless/serverless wrappers over real meshes (an in-process dev CA): one mesh per instance,
// made on the first invocation (concurrent first invocations share it; a failed one is retried),
// HTTP events of API Gateway REST v1, HTTP API v2 and ALB judged before the handler (admitted with
// context.peer; a DENY rule is a 403 in the event's shape, a malformed target a 400, the handler
// not run), other events passed through; withMeshHttp judging (req, res) requests the same way on a
// real node:http server; and the thaw hook (mesh[kThaw]) in virtual time: an idle pool dropped
// after a gap (a new connection, no retry), an SVID renewed when due, an expired one failing closed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { type AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { VirtualClock } from '../../src/clock.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { kThaw, type ThawHook } from '../../src/mesh/hooks.js';
import { withMesh, withMeshHttp } from '../../src/serverless/index.js';
import { frontedRequestOf } from '../../src/serverless/events.js';
import { TD, filesOf, idOf, tempDir, writeSvidDir } from '../helpers/certs.js';
import { createDirSource } from '../../src/sources/dir.js';
import { renewalPoint } from '../../src/sources/lifecycle.js';
import { THAW_GRACE_MS } from '../../src/sources/source.js';

const FN = idOf('fn');
const quiet = { info() {}, warn() {}, error() {} };
const ca: DevCa = await createDevCa({ trustDomain: TD }); // before the describe blocks: their wrappers take options at once
let root: Awaited<ReturnType<typeof tempDir>>;
const meshes: Mesh[] = [];
before(async () => {
  root = await tempDir('sidecarless-serverless-');
});
after(async () => {
  for (const m of meshes) await m.close();
  await root.remove();
});

const options = () => ({
  service: 'fn',
  identity: { ca },
  logger: quiet,
  inbound: { defaultPolicy: 'all-unauthenticated' as const, policy: { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin/*'] } }] } },
});

const v1 = (path: string, extra: object = {}) => ({ httpMethod: 'GET', path, resource: '/{proxy+}', headers: { Host: 'fn.example' }, queryStringParameters: null, requestContext: { identity: { sourceIp: '192.0.2.7' } }, ...extra });
const v2 = (rawPath: string, host = 'fn.example') => ({ version: '2.0', rawPath, rawQueryString: 'a=1', headers: { host }, requestContext: { domainName: 'fn.example', http: { method: 'POST', sourceIp: '192.0.2.8' } } });
const alb = (path: string) => ({ httpMethod: 'GET', path, headers: { host: 'fn.example', 'x-forwarded-for': '10.9.9.9, 192.0.2.9' }, requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:tg' } } });

describe('withMesh', () => {
  const seen: Array<{ event: unknown; peer: unknown; mesh: Mesh }> = [];
  const handler = withMesh(async (event, context, mesh) => {
    seen.push({ event, peer: context.peer, mesh });
    return { ok: true };
  }, options());

  test('concurrent first invocations share one mesh, handed last; a non-HTTP event passes unjudged (no peer)', async () => {
    const [a, b] = await Promise.all([handler({ Records: [{ eventSource: 'aws:sqs' }] }, {}), handler({ source: 'aws.events' }, {})]);
    assert.deepEqual([a, b], [{ ok: true }, { ok: true }]);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.mesh, seen[1]!.mesh, 'one createMesh for both');
    meshes.push(seen[0]!.mesh);
    assert.equal(seen[0]!.mesh.spiffeId, FN);
    assert.ok(!('peer' in (seen[0] as object & { peer?: unknown })) || seen[0]!.peer === undefined, 'no peer for a non-HTTP event');
    assert.equal(handler.length, 2, 'an async handler: the runtime hands it no callback');
  });

  test('HTTP events (REST v1, HTTP API v2, ALB) admitted by the policy: the handler runs with context.peer null (unauthenticated)', async () => {
    seen.length = 0;
    for (const e of [v1('/orders'), v2('/orders'), alb('/orders')]) assert.deepEqual(await handler(e, {}), { ok: true });
    assert.deepEqual(seen.map((s) => s.peer), [null, null, null]);
    assert.equal(new Set(seen.map((s) => s.mesh)).size, 1, 'the same mesh as before');
  });

  test('a DENY rule answers 403 in the event shape and never runs the handler; a malformed target or host is a 400', async () => {
    seen.length = 0;
    const r1 = (await handler(v1('/admin/users'), {})) as Record<string, unknown>;
    assert.equal(r1.statusCode, 403);
    assert.deepEqual(r1.headers, { 'content-type': 'application/json' });
    // The verdict's words and code are kJudgeFronted's (src/mesh/fronted.ts); the wrapper's part is the shape.
    const b1 = JSON.parse(r1.body as string) as { error: string; code: string };
    assert.deepEqual(Object.keys(b1).sort(), ['code', 'error']);
    assert.match(b1.code, /^ERR_SIDECARLESS_[A-Z_]+$/);
    const r2 = (await handler(v2('/admin/x'), {})) as Record<string, unknown>;
    assert.equal(r2.statusCode, 403);
    const r3 = (await handler(alb('/admin/x'), {})) as Record<string, unknown>;
    assert.equal(r3.statusCode, 403);
    assert.equal(r3.statusDescription, '403 Forbidden', 'an ALB wants a status description');
    const bad = (await handler(v2('/%00'), {})) as Record<string, unknown>;
    assert.equal(bad.statusCode, 400);
    assert.match(JSON.parse(bad.body as string).code, /^ERR_SIDECARLESS_[A-Z_]+$/);
    assert.equal(((await handler(v2('/ok', 'a b'), {})) as { statusCode: number }).statusCode, 400, 'a bad host');
    // Traversal is normalized before the policy: /ok/../admin/x is /admin/x.
    assert.equal(((await handler(v1('/ok/../admin/x'), {})) as { statusCode: number }).statusCode, 403);
    assert.equal(seen.length, 0, 'the handler never ran for a refusal');
  });

  test('a failed creation is not cached: the next invocation retries and its error is the creation\'s own', async () => {
    const dir = `${root.dir}/late`;
    await mkdir(dir, { recursive: true });
    const h = withMesh(async (_e, _c, mesh) => mesh.identity.getX509Svid().spiffeId.id, { service: 'fn', logger: quiet, identity: { dir, startTimeout: 200 } });
    await assert.rejects(h({}, {}), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE' && /no X\.509-SVID/.test(e.message));
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: FN })));
    assert.equal(await h({}, {}), FN);
    const m = await withMesh(async (_e, _c, mesh) => mesh, { service: 'fn', logger: quiet, identity: { dir } })({}, {});
    meshes.push(m as Mesh); // a non-HTTP event: the handler's own value
  });
});

describe('HTTP events → FrontedRequest', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const rest = v1('/p', { requestContext: { identity: { sourceIp: '192.0.2.7', clientCert: { clientCertPem: pem } } }, multiValueQueryStringParameters: { q: ['a b', 'c'] } });
  const http2 = { ...v2('/p'), requestContext: { http: { method: 'GET', sourceIp: '192.0.2.8' }, authentication: { clientCert: { clientCertPem: pem } } } };

  test('a forwarded client certificate is read only when inbound.frontEnd names API Gateway', () => {
    assert.equal(frontedRequestOf(rest)!.request.forwardedClientCertPem, undefined);
    assert.equal(frontedRequestOf(http2, { frontEnd: { kind: 'something-else' } })!.request.forwardedClientCertPem, undefined);
    assert.equal(frontedRequestOf(rest, { frontEnd: { kind: 'aws-api-gateway' } })!.request.forwardedClientCertPem, pem);
    assert.equal(frontedRequestOf(http2, { frontEnd: { kind: 'aws-api-gateway' } })!.request.forwardedClientCertPem, pem);
    assert.equal(frontedRequestOf({ ...alb('/p'), headers: { 'x-amzn-mtls-clientcert': pem } }, { frontEnd: { kind: 'aws-api-gateway' } })!.request.forwardedClientCertPem, undefined);
  });

  test('method, target (REST re-encodes its decoded query), host, source address (ALB: the entry it appended)', () => {
    const r = frontedRequestOf(rest)!.request;
    assert.deepEqual([r.method, r.target, r.host, r.sourceIp, r.port], ['GET', '/p?q=a%20b&q=c', 'fn.example', '192.0.2.7', 443]);
    const h = frontedRequestOf(v2('/p'))!.request;
    assert.deepEqual([h.method, h.target, h.sourceIp], ['POST', '/p?a=1', '192.0.2.8']);
    assert.equal(frontedRequestOf(alb('/p'))!.request.sourceIp, '192.0.2.9');
    for (const e of [{}, null, 'x', { Records: [] }, { httpMethod: 'GET' }]) assert.equal(frontedRequestOf(e), undefined);
  });
});

describe('withMeshHttp on a node:http server', () => {
  let port = 0;
  let ran = 0;
  const server = createServer(
    withMeshHttp(async (req, res, mesh) => {
      ran++;
      res.end(JSON.stringify({ peer: req.peer, id: mesh.spiffeId, url: req.url }));
    }, options()),
  );
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const get = (path: string, host = 'fn.example') =>
    new Promise<{ status: number; body: string; type: string | undefined }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res: IncomingMessage) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, type: res.headers['content-type'] }));
      });
      req.on('error', reject).end();
    });

  test('admitted: the handler runs with req.peer null; denied: 403 JSON; malformed: 400; the handler ran for admissions only', async () => {
    const ok = await get('/orders?x=1');
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { peer: null, id: FN, url: '/orders?x=1' });
    const denied = await get('/admin/keys');
    assert.equal(denied.status, 403);
    assert.equal(denied.type, 'application/json');
    assert.match(JSON.parse(denied.body).code, /^ERR_SIDECARLESS_[A-Z_]+$/);
    assert.equal((await get('/%00')).status, 400);
    assert.equal((await get('/x', 'a b')).status, 400);
    assert.equal(ran, 1);
  });

  test('a mesh that cannot start is a 503 with its code (the message goes to the log), retried on the next request', async () => {
    const logged: string[] = [];
    const h = withMeshHttp(() => {}, { service: 'fn', identity: { dir: `${root.dir}/never`, startTimeout: 100 } });
    const s = createServer(h);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const origError = console.error;
    console.error = (m: string) => logged.push(m);
    try {
      const p = (s.address() as AddressInfo).port;
      for (let i = 0; i < 2; i++) {
        const r = await fetch(`http://127.0.0.1:${p}/x`);
        assert.equal(r.status, 503);
        assert.equal(((await r.json()) as { code: string }).code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      }
    } finally {
      console.error = origError;
      await new Promise<void>((r) => s.close(() => r()));
    }
    assert.equal(logged.filter((l) => /could not start.*no X\.509-SVID/.test(l)).length, 2, logged.join('\n'));
  });
});

describe('kThaw in virtual time', () => {
  test('a gap drops idle pooled connections (the next request opens a new one, no retry); no gap keeps them', async () => {
    const clock = new VirtualClock(Date.now());
    const server = await createMesh({ service: 'api', identity: { ca }, logger: quiet });
    meshes.push(server);
    let connections = 0;
    const https = server.createServer((_req, res) => res.end('ok'));
    https.on('secureConnection', () => connections++);
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const fn = await createMesh({ service: 'fn', identity: { ca }, logger: quiet, outbound: { services: { api: { endpoints: [`127.0.0.1:${(https.address() as AddressInfo).port}`] } } } }, { clock });
    meshes.push(fn);
    const thaw = (fn as unknown as Record<symbol, ThawHook>)[kThaw]!;
    const call = async () => (await (await fn.fetch('http://api/')).text());
    for (let i = 0; i < 3; i++) assert.equal(await call(), 'ok');
    const warm = connections;
    await thaw();
    assert.equal(await call(), 'ok');
    assert.equal(connections, warm, 'back-to-back invocations keep their connections');
    clock.jump(5_000); // frozen: no timer ran
    await thaw();
    assert.equal(await call(), 'ok');
    assert.equal(connections, warm + 1, 'a fresh connection after the gap');
    assert.equal(fn.stats().outbound.services.api!.retries, 0, 'the first request after the thaw was not retried');
    https.close();
  });

  test('an SVID past its renewal point is renewed by the thaw; an expired one that cannot be renewed fails closed after startTimeout', async () => {
    const clock = new VirtualClock(Date.now());
    const vca = await createDevCa({ trustDomain: TD, clock });
    const renewing = await createMesh({ service: 'fn', identity: { ca: vca, ttl: 60_000 }, logger: quiet }, { clock });
    meshes.push(renewing);
    const before = renewing.identity.getX509Svid();
    clock.jump(50_000); // past 75 %: its renewal timer did not run
    await (renewing as unknown as Record<symbol, ThawHook>)[kThaw]!();
    assert.notEqual(renewing.identity.getX509Svid().chain[0]!.fingerprint, before.chain[0]!.fingerprint, 'renewed before the invocation');

    const dir = `${root.dir}/frozen`;
    await mkdir(dir, { recursive: true });
    await writeSvidDir(dir, filesOf(await vca.issue({ spiffeId: FN, ttlMs: 60_000 })));
    const stuck = await createMesh({ service: 'fn', identity: { dir, startTimeout: 3_000 }, logger: quiet }, { clock });
    meshes.push(stuck);
    clock.jump(120_000); // frozen past expiry; nobody rewrote the files
    const thawing = (stuck as unknown as Record<symbol, ThawHook>)[kThaw]!();
    const outcome = thawing.then(() => 'resolved', (e: Error & { code?: string }) => e);
    await new Promise((r) => setTimeout(r, 50)); // the re-read of the files (real I/O)
    await clock.advanceAsync(3_000);
    const err = (await outcome) as Error & { code?: string };
    assert.equal(err.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
    assert.match(err.message, /expired while the function was frozen \(120 s since the previous invocation\) and no valid one arrived within 3000 ms/);
  });

  test('a lifecycle timer that fires late (a thaw) waits THAW_GRACE_MS for the renewal: renewed within it, nothing is logged; not renewed, reported after it', async () => {
    const clock = new VirtualClock(Date.now());
    const vca = await createDevCa({ trustDomain: TD, clock });
    const dir = `${root.dir}/late-timer`;
    await mkdir(dir, { recursive: true });
    await writeSvidDir(dir, filesOf(await vca.issue({ spiffeId: FN, ttlMs: 60_000 })));
    const events: string[] = [];
    const source = await createDirSource({ dir, clock, pollMs: 3_600_000, onLifecycle: (e) => events.push(e.kind) });
    try {
      const s = source.getX509Svid();
      clock.jump(renewalPoint(s.notBefore, s.notAfter) + 5_000 - clock.now()); // frozen: the timer did not run
      await clock.advanceAsync(0); // it runs now, 5 s late
      assert.deepEqual(events, [], 'no report at the thaw');
      await clock.advanceAsync(THAW_GRACE_MS);
      assert.deepEqual(events, ['renewal-overdue'], 'no renewal came: reported after the grace');

      await writeSvidDir(dir, filesOf(await vca.issue({ spiffeId: FN, ttlMs: 60_000 })));
      await source.refreshIfDue();
      const s2 = source.getX509Svid();
      assert.notEqual(s2.notAfter, s.notAfter);
      events.length = 0;
      await writeSvidDir(dir, filesOf(await vca.issue({ spiffeId: FN, ttlMs: 120_000 })));
      clock.jump(s2.notAfter + 10_000 - clock.now()); // frozen past expiry, the renewal written meanwhile
      await clock.advanceAsync(0); // the late timers: the phase check (now quiet) and the watch's debounce (re-reads)
      await source.refreshIfDue(); // what kThaw does
      await clock.advanceAsync(THAW_GRACE_MS);
      assert.deepEqual(events, [], 'renewed within the grace: no expiry line for an SVID nobody used expired');
      assert.ok(source.getX509Svid().notAfter > clock.now());
    } finally {
      await source.close();
    }
  });
});
