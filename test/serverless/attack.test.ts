// An outsider's attacks on sidecarless/serverless, each a request a client (or a careless event
// source) can send, over one real mesh (an in-process dev CA, JWT-SVIDs from it): what the policy
// judged is what the handler routes on (dot segments removed from the event's path and from
// req.url), header-name case games in an event's headers and multiValueHeaders are one field (two
// Authorization fields are refused, not one of them picked), and identity headers are stripped
// wherever the event holds them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { withMesh, withMeshHttp } from '../../src/serverless/index.js';
import { ManualSource, TD, filesOf, idOf, tempDir, writeSvidDir } from '../helpers/certs.js';
import { VirtualClock } from '../../src/clock.js';
import { kThaw, type ThawHook } from '../../src/mesh/hooks.js';

const FN = idOf('fn');
const quiet = { info() {}, warn() {}, error() {} };
const ca: DevCa = await createDevCa({ trustDomain: TD });
const options = {
  service: 'fn',
  identity: { ca },
  logger: quiet,
  inbound: {
    jwtSvid: { audience: FN },
    policy: {
      rules: [
        { name: 'public', action: 'allow' as const, from: [{ unauthenticated: true }], to: [{ paths: ['/public/*'] }] },
        { name: 'peers', action: 'allow' as const, from: [{ identities: ['*'] }] },
      ],
    },
  },
};
let caller: Mesh;
let token = '';
const meshes: Mesh[] = [];
before(async () => {
  caller = await createMesh({ service: 'caller', identity: { ca }, logger: quiet });
  token = await caller.jwtSvid(FN);
});
after(async () => {
  await caller.close();
  for (const m of meshes) await m.close();
});

const seen: Array<{ event: Record<string, any>; peer: unknown }> = [];
const lambda = withMesh(async (event: Record<string, any>, context, mesh) => {
  if (!meshes.includes(mesh)) meshes.push(mesh);
  seen.push({ event, peer: context.peer });
  return { ok: true };
}, options);
const status = (r: unknown) => (r as { statusCode?: number }).statusCode ?? 200;

const v1 = (path: string, extra: object = {}) => ({ httpMethod: 'GET', path, resource: '/{proxy+}', headers: { Host: 'fn.example' }, requestContext: { identity: { sourceIp: '192.0.2.7' } }, ...extra });
const v2 = (rawPath: string) => ({ version: '2.0', rawPath, rawQueryString: '', headers: { host: 'fn.example' }, requestContext: { domainName: 'fn.example', http: { method: 'GET', path: rawPath, sourceIp: '192.0.2.8' } } });
const alb = (path: string, extra: object = {}) => ({ httpMethod: 'GET', path, headers: { host: 'fn.example' }, requestContext: { elb: { targetGroupArn: 'arn:tg' } }, ...extra });

describe('withMesh: the handler routes on what the policy judged', () => {
  test('/admin/../public/x is judged /public/x (admitted unauthenticated): the handler sees /public/x, not /admin/…', async () => {
    for (const raw of ['/admin/../public/x', '/admin/%2e%2e/public/x', '/public/./x', '//public//x/']) {
      seen.length = 0;
      assert.equal(status(await lambda(v1(raw), {})), 200, raw);
      assert.equal(status(await lambda(alb(raw), {})), 200, raw);
      assert.equal(status(await lambda(v2(raw), {})), 200, raw);
      const [a, b, c] = seen.map((s) => s.event);
      assert.ok(a!.path.startsWith('/public/'), `REST ${raw} reached the handler as ${a!.path}`);
      assert.ok(b!.path.startsWith('/public/'), `ALB ${raw} reached the handler as ${b!.path}`);
      assert.ok(c!.rawPath.startsWith('/public/') && c!.requestContext.http.path === c!.rawPath, `HTTP API ${raw} reached the handler as ${c!.rawPath}`);
      assert.deepEqual(seen.map((s) => s.peer), [null, null, null]);
    }
    seen.length = 0;
    await lambda(v1('/public/as-is'), {});
    assert.equal(seen[0]!.event.path, '/public/as-is', 'a normalized path is left alone');
  });
});

describe('withMesh: an HTTP API passes the path decoded', () => {
  test('a decoded space, non-ASCII, ? or # is judged as the encoded request path (not a 400, not split), and handed over encoded', async () => {
    for (const [raw, judged] of [['/public/a b', '/public/a%20b'], ['/public/ü', '/public/%C3%BC'], ['/public/me?admin=true', '/public/me%3Fadmin=true'], ['/public/x#y', '/public/x%23y'], ['/public/a%20b', '/public/a%20b'], ['/public/\uD800', '/public/%EF%BF%BD']] as const) {
      seen.length = 0;
      const r = await lambda(v2(raw), {});
      assert.equal(status(r), 200, `${raw}: ${JSON.stringify(r)}`);
      assert.equal(seen[0]!.event.rawPath, judged, raw);
    }
    assert.equal(status(await lambda(v2('/admin/x?y'), {})), 401, 'a decoded ? does not make /admin/x?y anything but /admin/…');
  });
});

describe('withMesh: header-name case games in an event', () => {
  test('Authorization and authorization in multiValueHeaders are two fields: 401, the handler does not run', async () => {
    seen.length = 0;
    const e = v1('/private', { multiValueHeaders: { Authorization: [`Bearer ${token}`], authorization: ['Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln'] } });
    assert.equal(status(await lambda(e, {})), 401);
    const e2 = v1('/private', { multiValueHeaders: { authorization: ['Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln'], Authorization: [`Bearer ${token}`] } });
    assert.equal(status(await lambda(e2, {})), 401);
    const e3 = alb('/private', { headers: { host: 'fn.example', Authorization: `Bearer ${token}`, authorization: 'Bearer other' } });
    assert.equal(status(await lambda(e3, {})), 401);
    assert.equal(seen.length, 0);
  });

  test('a valid token is admitted once, and neither spelling of it reaches the handler', async () => {
    seen.length = 0;
    const e = v1('/private', { headers: { Host: 'fn.example', Authorization: `Bearer ${token}` }, multiValueHeaders: { Host: ['fn.example'], Authorization: [`Bearer ${token}`] } });
    assert.equal(status(await lambda(e, {})), 200);
    assert.equal((seen[0]!.peer as { spiffeId: string }).spiffeId, idOf('caller'));
    assert.deepEqual(Object.keys(seen[0]!.event.headers), ['Host']);
    assert.deepEqual(Object.keys(seen[0]!.event.multiValueHeaders), ['Host']);
  });

  test('an identity header the event holds in only one of its maps, in any shape, is stripped; an empty multi value does not hide a single one', async () => {
    seen.length = 0;
    const e = v1('/public/x', {
      headers: { Host: 'fn.example', 'L5d-Client-Id': 'admin.example' },
      multiValueHeaders: { 'X-Forwarded-Client-Cert': 'By=spiffe://x;URI=spiffe://cluster.local/ns/default/sa/admin', 'l5d-client-id': [] },
    });
    assert.equal(status(await lambda(e, {})), 200);
    const ev = seen[0]!.event;
    assert.deepEqual([Object.keys(ev.headers), Object.keys(ev.multiValueHeaders)], [['Host'], []]);
  });

  test('two Host fields are a 400 (the judge would read one, the handler maybe the other)', async () => {
    seen.length = 0;
    const e = v1('/public/x', { headers: { Host: 'admin.example' }, multiValueHeaders: { Host: ['public.example', 'admin.example'] } });
    assert.equal(status(await lambda(e, {})), 400);
    assert.equal(status(await lambda(v1('/public/x', { multiValueHeaders: { Host: ['fn.example'] } }), {})), 200);
    assert.equal(seen.length, 1);
  });

  test('Bearer<TAB>token and "bearer  token" are Bearer credentials: judged, stripped once admitted; an empty Authorization is no credential', async () => {
    for (const auth of [`Bearer\t${token}`, `bearer  ${token}`, ` BEARER ${token} `]) {
      seen.length = 0;
      assert.equal(status(await lambda(v1('/private', { headers: { Host: 'fn.example', Authorization: auth } }), {})), 200, JSON.stringify(auth));
      assert.equal((seen[0]!.peer as { spiffeId: string }).spiffeId, idOf('caller'));
      assert.deepEqual(Object.keys(seen[0]!.event.headers), ['Host']);
    }
    assert.equal(status(await lambda(v1('/public/x', { headers: { Host: 'fn.example', Authorization: 'Bearer\tnot a token' } }), {})), 401);
    assert.equal(status(await lambda(v1('/public/x', { headers: { Host: 'fn.example', Authorization: '' } }), {})), 200);
  });

  test('a header named __proto__ is a header like any other', async () => {
    seen.length = 0;
    const e = JSON.parse(JSON.stringify(v1('/public/x')));
    e.headers = JSON.parse('{"Host":"fn.example","__proto__":"x"}');
    e.multiValueHeaders = JSON.parse('{"__proto__":["y"]}');
    assert.equal(status(await lambda(e, {})), 200);
    assert.equal(seen.length, 1);
  });
});

describe('withMesh: requests from the network in shapes it cannot judge are refused, not passed as "not HTTP"', () => {
  test('an API Gateway WebSocket $connect and VPC Lattice requests (2.0 and 1.0): 403, the handler does not run; SQS still passes', async () => {
    seen.length = 0;
    const ws = { headers: { Host: 'ws.example' }, multiValueHeaders: { Host: ['ws.example'] }, isBase64Encoded: false, requestContext: { routeKey: '$connect', eventType: 'CONNECT', connectionId: 'abc=', domainName: 'ws.example', identity: { sourceIp: '198.51.100.1' } } };
    const lattice2 = { version: '2.0', path: '/admin/x', method: 'GET', headers: { host: ['fn.example'] }, body: '', isBase64Encoded: false, requestContext: { serviceNetworkArn: 'arn:sn', serviceArn: 'arn:svc', targetGroupArn: 'arn:tg', identity: { type: 'AWS_IAM' }, region: 'eu-west-1', timeEpoch: '1' } };
    const lattice1 = { raw_path: '/admin/x', method: 'GET', headers: { host: 'fn.example' }, query_string_parameters: {}, body: '', is_base64_encoded: false };
    for (const e of [ws, lattice2, lattice1]) {
      const r = (await lambda(e, {})) as { statusCode: number; body: string };
      assert.equal(r.statusCode, 403, JSON.stringify(e));
      assert.equal(JSON.parse(r.body).code, 'ERR_SIDECARLESS_HTTP_EVENT_UNSUPPORTED');
    }
    assert.equal(seen.length, 0);
    assert.deepEqual(await lambda({ Records: [{ eventSource: 'aws:sqs', body: '{}' }] }, {}), { ok: true });
  });
});

describe('withMeshHttp: req.url is the target the policy judged', () => {
  let port = 0;
  const urls: string[] = [];
  const trailers: string[][] = [];
  const server = createServer(
    withMeshHttp((req, res) => {
      urls.push(req.url!);
      req.resume().on('end', () => {
        trailers.push(Object.keys(req.trailers));
        res.end();
      });
    }, options),
  );
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host: 'fn.example' }, agent: false }, (res: IncomingMessage) => {
        res.resume().on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject).end();
    });

  test('dot segments (plain and %2e-encoded) are removed from req.url; the query stays as sent', async () => {
    assert.equal(await get('/admin/../public/x?a=%2e%2e&b'), 200);
    assert.equal(await get('/admin/%2e%2e/public/y'), 200);
    assert.equal(await get('http://fn.example/public/z'), 200);
    assert.equal(await get('/admin/x'), 401);
    assert.deepEqual(urls, ['/public/x?a=%2e%2e&b', '/public/y', '/public/z']);
  });

  test('identity headers in chunked trailers never reach the app, even when the head had none to strip', async () => {
    trailers.length = 0;
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => {
        sock.end(
          'POST /public/t HTTP/1.1\r\nHost: fn.example\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
            `1\r\na\r\n0\r\nX-Forwarded-Client-Cert: URI=${idOf('admin')}\r\nL5d-Client-Id: admin\r\nAuthorization: Bearer ${token}\r\nX-Fine: 1\r\n\r\n`,
        );
      });
      let got = '';
      sock.on('data', (c) => (got += c)).on('end', () => resolve(got)).on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 200/);
    assert.deepEqual(trailers, [['x-fine']], 'identity claims, and a bearer token nobody judged (inbound.jwtSvid is set), are not the app\'s');
  });
});

describe('kThaw: identity.startTimeout 0', () => {
  test('an SVID that expired while frozen fails the thaw at once, as createMesh would, not after the 15 s default', async () => {
    const clock = new VirtualClock(Date.now());
    const vca = await createDevCa({ trustDomain: TD, clock });
    const dir = await tempDir('sidecarless-attack-');
    try {
      await writeSvidDir(dir.dir, filesOf(await vca.issue({ spiffeId: FN, ttlMs: 60_000 })));
      const m = await createMesh({ service: 'fn', identity: { dir: dir.dir, startTimeout: 0 }, logger: quiet }, { clock });
      meshes.push(m);
      clock.jump(120_000);
      const outcome = (m as unknown as Record<symbol, ThawHook>)[kThaw]!().then(() => 'resolved', (e: Error & { code?: string }) => e.code);
      await new Promise((r) => setTimeout(r, 50)); // the re-read of the files (real I/O)
      await clock.advanceAsync(0);
      assert.equal(await Promise.race([outcome, new Promise((r) => setTimeout(() => r('still waiting'), 200))]), 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      await clock.advanceAsync(15_000); // let a wrongly armed timer settle before the mesh closes
    } finally {
      await dir.remove();
    }
  });
});

describe('a JWT bundle this mesh cannot use', () => {
  test("the client is told there is none, not the function's file paths and errors; the log is", async () => {
    const source = new ManualSource();
    source.set(filesOf(await ca.issue({ spiffeId: FN })));
    const logged: string[] = [];
    const logger = { info() {}, warn: (m: string) => logged.push(m), error: (m: string) => logged.push(m) };
    const h = withMesh(async (_e, _c, m) => void meshes.push(m), { service: 'fn', identity: { source }, logger, inbound: { jwtSvid: { audience: FN, bundle: { file: '/etc/secret-config/prod/jwks.json' } } } });
    const r = (await h(v1('/x', { headers: { Host: 'fn.example', Authorization: `Bearer ${token}` } }), {})) as { statusCode: number; body: string; headers: Record<string, string> };
    assert.equal(r.statusCode, 401);
    assert.doesNotMatch(r.body + r.headers['www-authenticate'], /secret-config|ENOENT/);
    assert.match(JSON.parse(r.body).error, /no JWT bundle to validate it with/);
    assert.ok(logged.some((l) => l.includes('/etc/secret-config/prod/jwks.json')), logged.join('\n'));
    await h({ source: 'aws.events' }, {}); // a non-HTTP event runs the handler: its mesh is closed after
  });
});
