// The JWT-SVID client of the Workload API against a server on the second stack (gRPC C-core,
// Python protobuf, python3-cryptography signing): fetch and cache, local checks of what the agent
// hands out, validation with the streamed bundles, rotation, redaction, backoff, no retry after
// InvalidArgument. Time for the cache and the backoff is a VirtualClock that starts at the wall
// clock (the server signs with real time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/clock.js';
import { JwtSvidError, JwtSvidUnavailableError } from '../../src/errors.js';
import { loadGrpc } from '../../src/sources/grpc.js';
import { JwtWorkloadClient, jwtBackoffDelay, jwtRefreshAt } from '../../src/sources/workload-api-jwt.js';
import { SpiffeWorkloadAPI } from '../../src/proto/workload.js';
import { waitFor } from '../helpers/net.js';
import { type JwtWorkloadServer, startJwtWorkloadServer } from '../helpers/py/jwt-workload-server.js';

const ME = 'spiffe://example.org/ns/default/sa/orders';
const AUD = 'spiffe://example.org/ns/default/sa/payments';
const SEC = () => Math.floor(Date.now() / 1000);

interface Rig {
  server: JwtWorkloadServer;
  client: JwtWorkloadClient;
  clock: VirtualClock;
  errors: Error[];
}

async function rig(t: { after(fn: () => Promise<void> | void): void }, o: { ttl?: number; random?: () => number; push?: boolean } = {}): Promise<Rig> {
  const server = await startJwtWorkloadServer(t);
  await server.addKey('example.org', 'k1', 'ES256');
  await server.setSigner('example.org', 'k1', o.ttl ?? 300);
  if (o.push !== false) await server.push();
  const clock = new VirtualClock(Date.now());
  const errors: Error[] = [];
  const client = new JwtWorkloadClient({ address: server.address, spiffeId: ME, clock, random: o.random ?? (() => 0.5), onError: (e) => errors.push(e) });
  t.after(() => client.close());
  return { server, client, clock, errors };
}

async function rejectsWith<E extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => E, check: (e: E) => boolean | void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    return check(e) !== false;
  });
}

test('jwtSvid: FetchJWTSVID with the header, our SPIFFE ID and the audience; cached; concurrent calls share one fetch', async (t) => {
  const { server, client } = await rig(t);
  const token = await client.jwtSvid(AUD);
  const v = await client.validate(token, AUD); // signed by the Python signer, checked with the streamed bundle
  assert.equal(v.spiffeId, ME);
  assert.equal(v.keyId, 'k1');
  let calls = await server.calls();
  assert.deepEqual(calls.jwt, [{ audience: [AUD], spiffe_id: ME, header: true }]);
  assert.equal(await client.jwtSvid(AUD), token, 'the second call is answered from the cache');
  assert.equal((await server.calls()).jwt.length, 1, 'and does not reach the server');
  const [a, b, c] = await Promise.all([client.jwtSvid('other'), client.jwtSvid('other'), client.jwtSvid(['other'])]);
  assert.equal(a, b);
  assert.equal(b, c);
  calls = await server.calls();
  assert.equal(calls.jwt.length, 2, 'three concurrent calls for one audience: one fetch');
  assert.deepEqual(calls.jwt[1]!.audience, ['other']);
  const multi = await client.jwtSvid([AUD, 'second']);
  assert.deepEqual([...(await client.validate(multi, 'second')).audience].sort(), [AUD, 'second'].sort());
  assert.equal((await server.calls()).jwt.length, 3, 'another audience set is another token');
  // One audience with a newline is not the two audiences it would join to.
  const joined = await client.jwtSvid(`${AUD}\nsecond`);
  assert.notEqual(joined, multi);
  assert.deepEqual((await client.validate(joined, `${AUD}\nsecond`)).audience, [`${AUD}\nsecond`]);
});

test('tokens of every JWT-SVID algorithm, signed by python3-cryptography, validate with the streamed JWKs', async (t) => {
  const { server, client } = await rig(t);
  const algs = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
  for (const alg of algs) await server.addKey('example.org', `py-${alg}`, alg, alg.startsWith('ES') ? undefined : 2048);
  await server.push();
  await waitFor(() => client.bundles().get('example.org')?.keys.size === algs.length + 1, 5000, 'all keys delivered');
  for (const alg of algs) {
    const token = await server.sign('example.org', `py-${alg}`, { sub: 'spiffe://example.org/peer', aud: AUD, exp: SEC() + 60 });
    const v = await client.validate(token, AUD);
    assert.equal(v.algorithm, alg);
    assert.equal(v.keyId, `py-${alg}`);
  }
  assert.equal(client.bundles().get('example.org')!.keys.get('py-RS256')!.description, 'RSA 2048 bits');
});

test('refresh at half the remaining lifetime: the call before it is cached, the call after it fetches', async (t) => {
  const { server, client, clock } = await rig(t, { ttl: 300 });
  const first = await client.jwtSvid(AUD);
  await clock.advanceAsync(140_000);
  assert.equal(await client.jwtSvid(AUD), first);
  assert.equal((await server.calls()).jwt.length, 1);
  await clock.advanceAsync(12_000); // 152 s after the fetch: past half of ~300 s
  const second = await client.jwtSvid(AUD);
  assert.notEqual(second, first);
  assert.equal((await server.calls()).jwt.length, 2);
});

test('refresh 30 s before exp when that comes first (a 40 s token: after 10 s)', async (t) => {
  const { server, client, clock } = await rig(t, { ttl: 40 });
  await client.jwtSvid(AUD);
  await clock.advanceAsync(8_000);
  await client.jwtSvid(AUD);
  assert.equal((await server.calls()).jwt.length, 1);
  await clock.advanceAsync(3_000);
  await client.jwtSvid(AUD);
  assert.equal((await server.calls()).jwt.length, 2);
  assert.equal(jwtRefreshAt(0, 40_000), 10_000);
  assert.equal(jwtRefreshAt(0, 300_000), 150_000);
  assert.equal(jwtRefreshAt(0, 20_000), -10_000, 'a token with less than 30 s left is fetched again on every call');
});

test('a failed refresh hands out the cached token until it expires, then rejects naming the gRPC status', async (t) => {
  const { server, client, clock, errors } = await rig(t, { ttl: 100 });
  const token = await client.jwtSvid(AUD);
  await server.fetchFail('UNAVAILABLE', 'agent restarting');
  await clock.advanceAsync(60_000);
  assert.equal(await client.jwtSvid(AUD), token);
  assert.match(errors.at(-1)!.message, /FetchJWTSVID .* UNAVAILABLE \(agent restarting\)/);
  await clock.advanceAsync(45_000);
  await rejectsWith(client.jwtSvid(AUD), JwtSvidUnavailableError, (e) => /UNAVAILABLE \(agent restarting\): the agent is not reachable/.test(e.message));
  await server.fetchFail('PERMISSION_DENIED', 'no identity issued');
  await rejectsWith(client.jwtSvid('fresh'), JwtSvidUnavailableError, (e) => /PERMISSION_DENIED \(no identity issued\): no identity for this workload yet/.test(e.message));
});

test('what the agent hands out is checked: our sub, our audience, not expired, a JWT-SVID alg', async (t) => {
  const { server, client } = await rig(t);
  await server.setSigner('example.org', 'k1', 300, { claims: { sub: 'spiffe://example.org/ns/default/sa/admin' } });
  await rejectsWith(client.jwtSvid('a1'), JwtSvidUnavailableError, (e) => /handed out a JWT-SVID that cannot be used: .*sub is spiffe:\/\/example.org\/ns\/default\/sa\/admin/.test(e.message));
  await server.setSigner('example.org', 'k1', 300, { spiffe_id: 'spiffe://example.org/other' });
  await rejectsWith(client.jwtSvid('a2'), JwtSvidUnavailableError, (e) => /sent no JWT-SVID for .*orders \(it sent: spiffe:\/\/example.org\/other\)/.test(e.message));
  await server.setSigner('example.org', 'k1', 300, { claims: { aud: ['elsewhere'] } });
  await rejectsWith(client.jwtSvid('a3'), JwtSvidUnavailableError, (e) => /aud lacks a3/.test(e.message));
  await server.setSigner('example.org', 'k1', 300, { claims: { exp: SEC() - 5 } });
  await rejectsWith(client.jwtSvid('a4'), JwtSvidUnavailableError, (e) => /expired at/.test(e.message));
  await server.setSigner('example.org', 'k1', 300);
  assert.ok(await client.jwtSvid('a5'));
  await assert.rejects(client.jwtSvid(''), /audience must be a non-empty string/);
  await assert.rejects(client.jwtSvid([]), /audience must be a non-empty string/);
});

test('the server refuses a call without workload.spiffe.io (so ours carries it: header true above)', async (t) => {
  const { server } = await rig(t);
  const grpc = await loadGrpc();
  const raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
  t.after(() => raw.close());
  const m = SpiffeWorkloadAPI.FetchJWTSVID;
  const err = await new Promise<{ code: number; details: string }>((resolve) =>
    raw.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { audience: [AUD] }, new grpc.Metadata(), (e) => resolve(e as never)),
  );
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
  assert.match(err.details, /security header missing/);
  assert.equal((await server.calls()).jwt[0]!.header, false);
});

test('key rotation in the bundle: a new key validates once pushed, a key rotated out stops validating', async (t) => {
  const { server, client } = await rig(t);
  const claims = () => ({ sub: 'spiffe://example.org/ns/default/sa/peer', aud: [AUD], exp: SEC() + 300 });
  const old = await server.sign('example.org', 'k1', claims());
  await client.validate(old, AUD);
  await server.addKey('example.org', 'k2', 'RS256');
  const fresh = await server.sign('example.org', 'k2', claims());
  await rejectsWith(client.validate(fresh, AUD), JwtSvidError, (e) => e.reason === 'key');
  await server.push();
  await waitFor(() => client.bundles().get('example.org')!.keys.has('k2'), 5000, 'k2 in the bundle');
  assert.equal((await client.validate(fresh, AUD)).algorithm, 'RS256');
  await client.validate(old, AUD);
  await server.dropKey('example.org', 'k1');
  await server.push();
  await waitFor(() => !client.bundles().get('example.org')!.keys.has('k1'), 5000, 'k1 gone');
  await rejectsWith(client.validate(old, AUD), JwtSvidError, (e) => e.reason === 'key' && /kid "k1"/.test(e.message));
  await client.validate(fresh, AUD);
});

test('a trust domain no longer sent is dropped: its tokens stop validating; federated ones validate by their own keys', async (t) => {
  const { server, client } = await rig(t);
  await server.addKey('partner.org', 'p1', 'ES384');
  await server.push();
  await waitFor(() => client.bundles().has('partner.org'), 5000, 'partner.org bundle');
  const partner = await server.sign('partner.org', 'p1', { sub: 'spiffe://partner.org/billing', aud: AUD, exp: SEC() + 60 });
  assert.equal((await client.validate(partner, AUD)).trustDomain, 'partner.org');
  // partner.org's token signed with example.org's key (a kid partner.org does not have): refused.
  const forged = await server.sign('example.org', 'k1', { sub: 'spiffe://partner.org/billing', aud: AUD, exp: SEC() + 60 }, { alg: 'ES256', kid: 'p1' });
  await rejectsWith(client.validate(forged, AUD), JwtSvidError, (e) => e.reason === 'signature' || e.reason === 'algorithm');
  await server.push({ omit: ['partner.org'] });
  await waitFor(() => !client.bundles().has('partner.org'), 5000, 'partner.org dropped');
  await rejectsWith(client.validate(partner, AUD), JwtSvidError, (e) => e.reason === 'trust-domain');
  assert.deepEqual(client.status().trustDomains, ['example.org']);
});

test('a bundle update with one bad key is refused whole: the previous bundles stay, the error is visible', async (t) => {
  const { server, client, errors } = await rig(t);
  await client.ready();
  await server.addKey('example.org', 'k2', 'ES256');
  const bad = JSON.stringify({ keys: [{ kty: 'EC', kid: 'x', crv: 'P-256', x: 'AAAA', y: 'AAAA' }] });
  await server.push({ extra: { 'spiffe://bad.org': bad } });
  await waitFor(() => client.status().lastError !== undefined, 5000, 'the refusal');
  assert.match(client.status().lastError!, /JWT bundle update .* refused, keeping the previous bundles: the JWT bundle of bad\.org, keys\[0\]/);
  assert.equal(client.status().bundles, 'ready');
  assert.ok(!client.bundles().get('example.org')!.keys.has('k2'), 'the good part of the refused update was not taken either');
  assert.ok(errors.some((e) => /bad\.org/.test(e.message)));
  await server.push();
  await waitFor(() => client.bundles().get('example.org')!.keys.has('k2'), 5000, 'the next good update');
  assert.equal(client.status().lastError, undefined);
});

test('stream lost: last bundles kept (stale), reconnect after 1 s, 2 s, 4 s … reset by a message', async (t) => {
  const { server, client, clock } = await rig(t);
  const token = await server.sign('example.org', 'k1', { sub: 'spiffe://example.org/peer', aud: AUD, exp: SEC() + 600 });
  await client.validate(token, AUD);
  await server.greet(false); // reconnected streams get nothing until the next push
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    const before = (await server.calls()).bundles;
    await server.failBundles(i % 2 ? 'PERMISSION_DENIED' : 'UNAVAILABLE');
    await waitFor(() => client.status().nextRetryAt !== undefined, 5000, 'a retry scheduled');
    const st = client.status();
    assert.equal(st.bundles, 'stale');
    delays.push(Date.parse(st.nextRetryAt!) - clock.now());
    await client.validate(token, AUD); // the last good bundles still validate
    await clock.advanceAsync(delays.at(-1)! - 1);
    assert.equal((await server.calls()).bundles, before, 'no reconnect before the delay');
    await clock.advanceAsync(1);
    await waitFor(async () => (await server.calls()).open_bundle_streams === 1 && client.status().nextRetryAt === undefined, 5000, 'reconnected');
    assert.equal((await server.calls()).bundles, before + 1);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000]);
  await server.push(); // a message resets the backoff
  await waitFor(() => client.status().bundles === 'ready', 5000, 'ready again');
  await server.failBundles('UNAVAILABLE');
  await waitFor(() => client.status().nextRetryAt !== undefined, 5000, 'a retry scheduled');
  assert.equal(Date.parse(client.status().nextRetryAt!) - clock.now(), 1000);
});

test('a server that sends only refused bundles and drops the stream: the backoff grows (only a message taken resets it)', async (t) => {
  const { server, client, clock } = await rig(t);
  await client.ready();
  await server.greet(false);
  const delays: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = (await server.calls()).bundles;
    await server.push({ extra: { 'spiffe://bad.org': '{"keys": "no"}' } });
    await waitFor(() => /refused/.test(client.status().lastError ?? ''), 5000, `refusal ${i + 1}`);
    await server.failBundles('UNAVAILABLE');
    await waitFor(() => client.status().nextRetryAt !== undefined, 5000, 'a retry scheduled');
    delays.push(Date.parse(client.status().nextRetryAt!) - clock.now());
    await clock.advanceAsync(delays.at(-1)!);
    await waitFor(async () => (await server.calls()).open_bundle_streams === 1 && (await server.calls()).bundles === before + 1, 5000, 'reconnected');
  }
  assert.deepEqual(delays, [1000, 2000, 4000]);
});

test('InvalidArgument ends the bundle stream for good: stopped, said why, never retried; last bundles still used', async (t) => {
  const { server, client, clock, errors } = await rig(t);
  await client.ready();
  await server.failBundles('INVALID_ARGUMENT', 'security header missing from request');
  await waitFor(() => client.status().bundles === 'stopped', 5000, 'stopped');
  assert.match(client.status().lastError!, /INVALID_ARGUMENT \(security header missing from request\).*Not retried/);
  assert.ok(errors.some((e) => /Not retried/.test(e.message)));
  assert.deepEqual(clock.pending(), [], 'no retry timer');
  await clock.advanceAsync(120_000);
  assert.equal((await server.calls()).bundles, 1);
  const token = await server.sign('example.org', 'k1', { sub: 'spiffe://example.org/peer', aud: AUD, exp: SEC() + 600 });
  await client.validate(token, AUD);
});

test('validate before any bundle: waits for the first message; with none, rejects after the timeout saying why', async (t) => {
  const { server, client } = await rig(t, { push: false });
  const token = await server.sign('example.org', 'k1', { sub: 'spiffe://example.org/peer', aud: AUD, exp: SEC() + 600 });
  const pending = client.validate(token, AUD);
  await waitFor(async () => (await server.calls()).open_bundle_streams === 1, 5000, 'the stream opened on first use');
  await server.push();
  assert.equal((await pending).spiffeId, 'spiffe://example.org/peer');

  const lone = await rig(t, { push: false });
  const clock = lone.clock;
  const p = lone.client.validate(token, AUD);
  await waitFor(async () => (await lone.server.calls()).open_bundle_streams === 1, 5000, 'stream open');
  const refused = rejectsWith(p, JwtSvidUnavailableError, (e) => /no JWT bundles from the Workload API at unix:.*within 15000 ms/.test(e.message));
  await clock.advanceAsync(14_999);
  assert.equal(await Promise.race([p.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(r, 50, 'waiting'))]), 'waiting');
  await clock.advanceAsync(1);
  await refused;
});

test('close(): the stream ends, pending and later calls reject as closed', async (t) => {
  const { server, client } = await rig(t, { push: false });
  const p = client.validate('x.y.z', AUD);
  await waitFor(async () => (await server.calls()).open_bundle_streams === 1, 5000, 'stream open');
  await client.close();
  await rejectsWith(p, JwtSvidUnavailableError, (e) => /closed/.test(e.message));
  await rejectsWith(client.jwtSvid(AUD), JwtSvidUnavailableError, (e) => /closed/.test(e.message));
  await waitFor(async () => (await server.calls()).open_bundle_streams === 0, 5000, 'the server saw the stream end');
});

test('backoff delays: 1 s doubling to 30 s, jitter ±20 %, never outside [1 s, 30 s]', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 40].map((n) => jwtBackoffDelay(n, () => 0.5)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(jwtBackoffDelay(0, () => 0), 1000);
  assert.equal(jwtBackoffDelay(2, () => 0), 3200);
  assert.ok(Math.abs(jwtBackoffDelay(2, () => 0.999999) - 4800) < 0.01);
  assert.equal(jwtBackoffDelay(9, () => 0.999999), 30000);
});

test('the JWT client dials only the configured address: never an HTTP proxy of the environment (tokens and bundles would come from it)', async (t) => {
  const { createServer } = await import('node:net');
  const listen = async (onConn: () => void) => {
    const s = createServer((c) => {
      onConn();
      c.destroy();
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => s.close(() => r())));
    return (s.address() as { port: number }).port;
  };
  let proxyHits = 0;
  let targetHits = 0;
  const proxyPort = await listen(() => proxyHits++);
  const targetPort = await listen(() => targetHits++); // not a gRPC server: the call fails, but it was dialled
  const names = ['grpc_proxy', 'https_proxy', 'http_proxy', 'no_grpc_proxy', 'no_proxy'] as const;
  const saved = Object.fromEntries(names.map((k) => [k, process.env[k]]));
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  for (const k of ['grpc_proxy', 'https_proxy', 'http_proxy'] as const) process.env[k] = `http://127.0.0.1:${proxyPort}`;
  delete process.env.no_grpc_proxy;
  delete process.env.no_proxy;
  const client = new JwtWorkloadClient({ address: `tcp://127.0.0.1:${targetPort}`, spiffeId: ME, fetchTimeoutMs: 1_000 });
  t.after(() => client.close());
  await assert.rejects(client.jwtSvid(AUD), JwtSvidUnavailableError);
  assert.equal(proxyHits, 0, 'nothing went to the proxy of the environment');
  assert.ok(targetHits >= 1, 'the configured address was dialled');
});
