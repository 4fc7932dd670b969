// The Linkerd identity source (sources/linkerd-identity.ts over issuers/linkerd-identity.ts) against
// the scripted identity service (test/helpers/py/linkerd_identity.py): the certificate it serves,
// the bundle set it holds, renewal as linkerd2-proxy schedules it (70 % of the time left, clamped
// to [10 s, 24 h]) on an injected clock, and a failure that keeps the last good certificate.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { VirtualClock } from '../../src/clock.js';
import { LINKERD_MAX_REFRESH_MS, LINKERD_MIN_REFRESH_MS, linkerdRefreshIn } from '../../src/sources/linkerd-refresh.js';
import { type LinkerdIdentitySourceOptions, LinkerdIdentitySource } from '../../src/sources/linkerd-identity.js';
import { type LinkerdIdentityServer, startLinkerdIdentity } from '../helpers/linkerd-identity-server.js';

const WEB = 'web.emojivoto.serviceaccount.identity.linkerd.cluster.local';
const KEY = 'dns:identity.linkerd.cluster.local';
type T = Parameters<typeof startLinkerdIdentity>[0];
const TOKENS = { 'tok-web': { ns: 'emojivoto', sa: 'web' } };

async function sourceOf(t: T, s: LinkerdIdentityServer, o: Partial<LinkerdIdentitySourceOptions> = {}) {
  const token = join(s.dir, 'linkerd-identity-token');
  await writeFile(token, 'tok-web');
  const errors: string[] = [];
  const source = new LinkerdIdentitySource({
    address: s.address,
    serverName: s.serverName,
    identity: WEB,
    trustAnchors: { file: s.anchorsFile },
    token: { file: token },
    callTimeoutMs: 3_000,
    random: () => 0.5,
    onError: (e) => errors.push(e.message),
    ...o,
  });
  t.after(() => source.close());
  return { source, errors };
}

test('linkerdRefreshIn: 70 % of the time left, clamped to [10 s, 24 h], 10 s when already past', () => {
  assert.equal(linkerdRefreshIn(100_000, 0), 70_000);
  assert.equal(linkerdRefreshIn(5_000, 0), LINKERD_MIN_REFRESH_MS);
  assert.equal(linkerdRefreshIn(3 * 86_400_000, 0), LINKERD_MAX_REFRESH_MS);
  assert.equal(linkerdRefreshIn(0, 1), LINKERD_MIN_REFRESH_MS);
  assert.equal(linkerdRefreshIn(Number.NaN, 0), LINKERD_MIN_REFRESH_MS);
});

describe('the source', () => {
  // One identity service for the suite (a Python process costs ~0.5 s), reset before each test.
  const cleanup: Array<() => Promise<void>> = [];
  let s: LinkerdIdentityServer;
  before(async () => {
    s = await startLinkerdIdentity({ after: (fn) => void cleanup.push(fn) }, { tokens: TOKENS });
  });
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });
  beforeEach(async () => {
    await s.fault(null);
    await s.lifetime(86_400);
  });
  /** The calls answered since `from`. */
  const since = async (from: number, n: number) => (await s.waitForCalls(from + n)).slice(from);
  test('serves the DNS-like certificate; the bundle set is the anchors under dnsBundleKey only', async (t) => {
    const { source, errors } = await sourceOf(t, s);
    await source.start();
    assert.deepEqual(errors, []);
    const st = source.status();
    assert.equal(st.kind, 'linkerd-identity');
    assert.equal(st.state, 'ready');
    const svid = source.getX509Svid();
    assert.equal(svid.spiffeId.id, WEB);
    assert.deepEqual(svid.chain[0]!.dnsNames, [WEB]);
    assert.deepEqual([...source.getBundles().keys()], [KEY]);
  });

  for (const [name, lifetimeS, wantMs] of [
    ['70 % of the time left', 100, 70_000],
    ['at least 10 s', 5, 10_000],
    ['at most 24 h', 3 * 86_400, 86_400_000],
  ] as const) {
    test(`renewal: ${name}, then a new certificate`, async (t) => {
      await s.lifetime(lifetimeS);
      const from = s.calls.length;
      const got = s.received;
      const clock = new VirtualClock(Date.now());
      const { source, errors } = await sourceOf(t, s, { clock });
      await source.start();
      assert.deepEqual(errors, []);
      const first = source.getX509Svid();
      const [call] = await since(from, 1);
      const want = clock.now() + Math.min(86_400_000, Math.max(10_000, Math.ceil(((call!.notAfter! - clock.now()) * 7) / 10)));
      assert.ok(Math.abs(source.rotateAt - want) < 1, `rotateAt ${source.rotateAt} = ${want}`);
      assert.ok(Math.abs(source.rotateAt - clock.now() - wantMs) < 1_500, `about ${wantMs} ms from now`);
      if (lifetimeS > 10) {
        // Before it is due nothing is asked; at it, a new certificate (the server's clock is real time).
        const due = Math.ceil(source.rotateAt - clock.now());
        await clock.advanceAsync(due - 1);
        assert.equal(s.received, got + 1);
        if (lifetimeS < 1000) {
          await clock.advanceAsync(1);
          await since(from, 2);
          await source.refreshIfDue();
          assert.notEqual(source.getX509Svid().chain[0]!.serialNumber, first.chain[0]!.serialNumber);
        }
      }
    });
  }

  test('Unavailable: no certificate yet, a retry with backoff, then recovery', async (t) => {
    await s.fault('unavailable', { count: 1 });
    const from = s.calls.length;
    const clock = new VirtualClock(Date.now());
    const { source, errors } = await sourceOf(t, s, { clock });
    await source.start();
    assert.equal(source.status().state, 'starting');
    assert.match(errors[0]!, /UNAVAILABLE/);
    const retryIn = source.rotateAt - clock.now();
    assert.ok(retryIn >= 250 && retryIn <= 30_000, `a backoff, not a loop: ${retryIn} ms`);
    await clock.advanceAsync(retryIn);
    await since(from, 2);
    await source.refreshIfDue();
    assert.equal(source.status().state, 'ready');
    assert.equal(source.getX509Svid().spiffeId.id, WEB);
  });

  test('a Certify response for another identity is refused and the last good certificate kept', async (t) => {
    const { source, errors } = await sourceOf(t, s);
    await source.start();
    const good = source.getX509Svid().chain[0]!.serialNumber;
    await s.fault('other-identity');
    await source.rotate();
    assert.match(errors[0]!, /Certify response for another identity/);
    assert.equal(source.status().state, 'stale');
    assert.equal(source.getX509Svid().chain[0]!.serialNumber, good);
  });

  test('an identity that is not Linkerd-shaped is a ConfigError at construction', async (t) => {
    await assert.rejects(async () => sourceOf(t, s, { identity: 'web.example.com' }), { code: 'ERR_SIDECARLESS_CONFIG_INVALID' });
  });
});
