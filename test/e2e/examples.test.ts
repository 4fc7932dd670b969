// The examples as a user runs them, with outside peers: curl and openssl holding SVIDs issued by
// `sidecarless svid issue`, and the fetch-client example calling a server example.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cli, run, startService, tsxArgs, type Service } from './process.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
const TD = 'cluster.local';
const id = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;

// The CA keys written here go when the file ends, pass or fail.
const tmp = makeTempDir('sidecarless-examples-');
after(() => tmp.remove());

before(async () => {
  dir = tmp.dir;
  const must = async (args: string[]) => {
    const r = await cli(args);
    assert.equal(r.code, 0, r.stderr);
  };
  await must(['ca', 'init', '--trust-domain', TD, '--out', join(dir, 'ca')]);
  await must(['ca', 'init', '--trust-domain', 'evil.example', '--out', join(dir, 'evil-ca')]);
  // curl checks host names; the server gets a DNS SAN for that (identity is still only the URI SAN).
  await must(['svid', 'issue', '--ca', join(dir, 'ca'), '--spiffe-id', id('payments'), '--out', join(dir, 'payments'), '--dns', 'payments']);
  await must(['svid', 'issue', '--ca', join(dir, 'ca'), '--spiffe-id', id('curl'), '--out', join(dir, 'curl')]);
  await must(['svid', 'issue', '--ca', join(dir, 'ca'), '--spiffe-id', id('orders'), '--out', join(dir, 'orders')]);
  await must(['svid', 'issue', '--ca', join(dir, 'evil-ca'), '--spiffe-id', 'spiffe://evil.example/ns/default/sa/curl', '--out', join(dir, 'evil')]);
});

function curl(port: number, who: string | null, path = '/whoami', extra: string[] = []) {
  const args = ['-sS', '--max-time', '10', '--resolve', `payments:${port}:127.0.0.1`, '--cacert', join(dir, 'curl', 'svid_bundle.pem')];
  if (who) args.push('--cert', join(dir, who, 'svid.pem'), '--key', join(dir, who, 'svid_key.pem'));
  return run('curl', [...args, ...extra, `https://payments:${port}${path}`]);
}

function opensslConnect(port: number, who: string | null) {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', join(dir, 'curl', 'svid_bundle.pem'), '-verify_return_error', '-ign_eof'];
  if (who) args.push('-cert', join(dir, who, 'svid.pem'), '-key', join(dir, who, 'svid_key.pem'));
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    import('node:child_process').then(({ spawn }) => {
      const p = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      // A refused handshake can end openssl before the request is written: that EPIPE is its answer.
      p.stdin.on('error', () => {});
      p.stdin.end('GET /whoami HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n');
      const timer = setTimeout(() => p.kill(), 10_000);
      p.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
  });
}

for (const example of ['express', 'fastify']) {
  test(`${example} example: curl and openssl with SVIDs get their identity echoed; without one, or from another CA, refused`, async (t) => {
    const server: Service = await startService(tsxArgs(`examples/${example}/server.ts`), /listening on https:\/\/127\.0\.0\.1:(\d+)/, {
      SIDECARLESS_IDENTITY_DIR: join(dir, 'payments'),
      PORT: '0',
    });
    t.after(() => server.stop());
    const port = Number(server.match[1]);

    const ok = await curl(port, 'curl');
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { server: id('payments'), caller: id('curl') });

    // A header claiming another identity changes nothing.
    const forged = await curl(port, 'curl', '/whoami', ['-H', `x-forwarded-client-cert: By=${id('admin')};URI=${id('admin')}`, '-H', `l5d-client-id: admin.default.serviceaccount.identity.linkerd.cluster.local`]);
    assert.equal(JSON.parse(forged.stdout).caller, id('curl'));

    const anonymous = await curl(port, null);
    assert.notEqual(anonymous.code, 0, 'no client certificate must be refused in STRICT mode');
    assert.doesNotMatch(anonymous.stdout, /server/);

    const evil = await curl(port, 'evil');
    assert.notEqual(evil.code, 0, 'a certificate from another CA must be refused');
    assert.doesNotMatch(evil.stdout, /server/);

    const s = await opensslConnect(port, 'curl');
    assert.match(s.out, /Verify return code: 0 \(ok\)/);
    assert.match(s.out, new RegExp(`"caller":"${id('curl').replace(/\//g, '\\/')}"`));

    const s2 = await opensslConnect(port, null);
    assert.doesNotMatch(s2.out, /"caller"/, 'openssl without a certificate must not reach the app');
    assert.match(s2.out, /alert|certificate required|errno|error/i);
  });
}

test('fetch-client example calls the express example by service name over mTLS', async (t) => {
  const server = await startService(tsxArgs('examples/express/server.ts'), /listening on https:\/\/127\.0\.0\.1:(\d+)/, {
    SIDECARLESS_IDENTITY_DIR: join(dir, 'payments'),
    PORT: '0',
  });
  t.after(() => server.stop());
  const r = await run(process.execPath, tsxArgs('examples/fetch-client/client.ts'), {
    env: { SIDECARLESS_IDENTITY_DIR: join(dir, 'orders'), SIDECARLESS_SERVICE: 'orders', PAYMENTS_ENDPOINTS: `127.0.0.1:${server.match[1]}` },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`orders → payments: 200 .*"caller":"${id('orders').replace(/\//g, '\\/')}"`));
  assert.match(r.stdout, /undici\.request → payments: 200/);
});

for (const file of ['examples/express/server.ts', 'examples/fastify/server.ts', 'examples/fetch-client/client.ts']) {
  test(`${file} runs on its own with one command and exits 0`, async () => {
    const r = await run(process.execPath, tsxArgs(file), { env: { SIDECARLESS_IDENTITY_DIR: '' }, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /→ payments: 200 .*"caller":"spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders"/);
  });
}

test('examples/custom-source: a third-party X509Source (env PEM) serves the mesh; a bad update is refused, the SVID kept', async () => {
  const alone = await run(process.execPath, tsxArgs('examples/custom-source/env-source.ts'), { env: { SIDECARLESS_IDENTITY_DIR: '' }, timeoutMs: 60_000 });
  assert.equal(alone.code, 0, alone.stderr);
  assert.match(alone.stdout, /orders → payments: 200 .*"caller":"spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders"/);
  assert.match(alone.stdout, /bad update: the private key does not belong to the leaf certificate/);
  assert.match(alone.stdout, /still serving: 200 stale/);
  // The files `sidecarless svid issue` wrote, as a mounted secret (SVID_*_FILE).
  const files = await run(process.execPath, tsxArgs('examples/custom-source/env-source.ts'), {
    env: {
      SVID_CERT_PEM_FILE: join(dir, 'payments', 'svid.pem'),
      SVID_KEY_PEM_FILE: join(dir, 'payments', 'svid_key.pem'),
      SVID_BUNDLE_PEM_FILE: join(dir, 'payments', 'svid_bundle.pem'),
      ORDERS_IDENTITY_DIR: join(dir, 'orders'),
    },
    timeoutMs: 60_000,
  });
  assert.equal(files.code, 0, files.stderr);
  assert.match(files.stdout, /payments serves spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments from the SVID_\* environment/);
  assert.match(files.stdout, /orders → payments: 200 .*"caller":"spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders"/);
  assert.match(files.stdout, /still serving: 200 stale/);
});

test('examples/traffic/canary.ts: splits shift live, every call succeeds', async () => {
  const r = await run(process.execPath, tsxArgs('examples/traffic/canary.ts'), { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /split 90\/10 +200\/200 ok/);
  assert.match(r.stdout, /shifted live to 50\/50 +200\/200 ok/);
  assert.match(r.stdout, /all to v2 +200\/200 ok — v2-a 200/);
});

test('examples/traffic/live-services.ts: services added, changed and removed at run time; a pending backend waited for', async () => {
  const r = await run(process.execPath, tsxArgs('examples/traffic/live-services.ts'), { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /start +snapshot 1 from options: \(no services\)/);
  assert.match(r.stdout, /GET http:\/\/inventory\/items → 200 inventory-1\n/);
  assert.match(r.stdout, /canary split set before its backend +snapshot 3 from api: inventory, payments; pending payments-v2 \(for payments\)/);
  assert.match(r.stdout, /the first waiting for payments-v2 → 200 payments-v2 \/ 200 payments-v1/);
  assert.match(r.stdout, /same service: 1 more request on its counters/);
  assert.match(r.stdout, /the in-flight report → 200 reports-1/);
  assert.match(r.stdout, /a new request to reports → ERR_SIDECARLESS_UNKNOWN_SERVICE/);
  assert.match(r.stdout, /a bad update is refused whole → ERR_SIDECARLESS_CONFIG_INVALID; snapshot still 7/);
});

test('examples/policy/istio.ts: an Istio AuthorizationPolicy enforced as it is', async () => {
  const r = await run(process.execPath, tsxArgs('examples/policy/istio.ts'), { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /orders POST \/charge +→ 200/);
  assert.match(r.stdout, /orders POST \/admin\/refund +→ 403/);
  assert.match(r.stdout, /web +POST \/charge +→ 403/);
});

test('examples/websocket/server.ts: ws behind the mesh; curl’s upgrade to a denied path gets 403 before ws sees it', async (t) => {
  const alone = await run(process.execPath, tsxArgs('examples/websocket/server.ts'), { env: { SIDECARLESS_IDENTITY_DIR: '' }, timeoutMs: 60_000 });
  assert.equal(alone.code, 0, alone.stderr);
  assert.match(alone.stdout, /orders → \/chat: hello spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
  assert.match(alone.stdout, /orders → \/admin: refused with 403 before ws saw it/);

  const server = await startService(tsxArgs('examples/websocket/server.ts'), /listening on wss:\/\/127\.0\.0\.1:(\d+)/, {
    SIDECARLESS_IDENTITY_DIR: join(dir, 'payments'),
    PORT: '0',
  });
  t.after(() => server.stop());
  const port = Number(server.match[1]);
  const upgrade = ['-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3'];
  const denied = await curl(port, 'curl', '/admin', upgrade);
  assert.equal(denied.stdout, '403', denied.stderr);
  const allowed = await curl(port, 'curl', '/chat', upgrade);
  assert.equal(allowed.stdout, '101', `curl's upgrade to /chat is switched by ws: ${allowed.stderr}`);
  const evil = await curl(port, 'evil', '/chat', upgrade);
  assert.notEqual(evil.stdout, '101', 'a certificate from another CA never upgrades');
});

test('serverless examples: the Lambda handler frozen between invocations by the local invoker, and the (req, res) function, call payments over mTLS; a denied path never reaches either', async (t) => {
  const payments = await startService(tsxArgs('examples/express/server.ts'), /listening on https:\/\/127\.0\.0\.1:(\d+)/, { SIDECARLESS_IDENTITY_DIR: join(dir, 'payments'), PORT: '0' });
  t.after(() => payments.stop());
  const env = { SIDECARLESS_IDENTITY_DIR: join(dir, 'orders'), PAYMENTS_ENDPOINTS: `127.0.0.1:${payments.match[1]}` };
  const [lambda, fn] = await Promise.all([
    run(process.execPath, tsxArgs('examples/serverless/invoke-local.ts'), { env: { ...env, FREEZE_MS: '1100' }, timeoutMs: 30_000 }),
    startService(tsxArgs('examples/serverless/http-function.ts'), /listening on http:\/\/127\.0\.0\.1:(\d+)/, { ...env, PORT: '0' }),
  ]);
  t.after(() => fn.stop());
  assert.equal(lambda.code, 0, lambda.stdout + lambda.stderr);
  const caller = `"caller":"${id('orders')}"`;
  const lines = lambda.stdout.split('\n');
  assert.match(lines.find((l) => l.startsWith('invocation 1:'))!, new RegExp(`^invocation 1: 200 .*"trigger":"aws.events".*${caller.replace(/[/.]/g, '\\$&')}`));
  assert.match(lines.find((l) => l.startsWith('invocation 2:'))!, /^invocation 2: 200 .*"caller":null,"trigger":"\/orders"/, 'after a freeze; the HTTP caller is unauthenticated (admitted by the policy)');
  assert.match(lines.find((l) => l.startsWith('invocation 3:'))!, /^invocation 3: 403 .*"code":"ERR_SIDECARLESS_/);
  assert.match(lambda.stdout, /the function exited by itself \(code 0\)/);

  const base = `http://127.0.0.1:${fn.match[1]}`;
  const ok = await fetch(`${base}/orders`);
  assert.equal(ok.status, 200);
  const body = (await ok.json()) as { caller: null; payments: { caller: string } };
  assert.deepEqual([body.caller, body.payments.caller], [null, id('orders')]);
  assert.equal((await fetch(`${base}/admin/keys`)).status, 403);
});
