// Issue 9 item 9: expiry is never silent. A served SVID that passes its renewal point (75 % of its
// lifetime) with no renewal is reported once (warning), once more when it expires (error), and a
// renewal afterwards is reported (info). Checked by an unref()ed timer AND at use time (a frozen
// process misses its timers), both in virtual time: the clock jumps as over a freeze (no timer
// runs: use-time checks alone), or moves and runs the source's timers (nobody uses the SVID).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtualClock } from '../../src/clock.js';
import { type Logger } from '../../src/config.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { createMesh } from '../../src/index.js';
import { createDevCaSource } from '../../src/sources/dev-ca.js';
import { type DirSource, createDirSource } from '../../src/sources/dir.js';
import { RENEWAL_POINT_FRACTION, type SvidLifecycleEvent, describeLifecycle, renewalPoint } from '../../src/sources/lifecycle.js';
import { workloadSourceOptions } from '../../src/sources/workload.js';
import { TD, craftLeaf, filesOf, idOf, tempDir, writeSvidDir } from '../helpers/certs.js';
import { waitFor } from '../helpers/net.js';
import { run } from '../e2e/process.js';

const ID = idOf('orders');
let root: Awaited<ReturnType<typeof tempDir>>;
let n = 0;
before(async () => {
  root = await tempDir('sidecarless-lifecycle-');
});
after(() => root.remove());

async function freshDir(): Promise<string> {
  const d = join(root.dir, `d${++n}`);
  await mkdir(d);
  return d;
}

const kinds = (events: SvidLifecycleEvent[]) => events.map((e) => e.kind);

test('the renewal point is 75 % of the lifetime: past every renewer (SPIRE 50 %, dev CA and Istio 50 % ± 10 %)', () => {
  assert.equal(RENEWAL_POINT_FRACTION, 0.75);
  assert.equal(renewalPoint(1_000, 5_000), 4_000);
  assert.ok(RENEWAL_POINT_FRACTION > 0.6);
});

describe('use time: the clock jumps as over a frozen process (no timer runs), the checks happen on use', () => {
  let clock: VirtualClock;
  let ca: DevCa;
  /** Time passes and no timer runs: only use can notice. */
  const jumpTo = (t: number) => clock.jump(t - clock.now());
  before(async () => {
    clock = new VirtualClock(Date.UTC(2031, 4, 1));
    ca = await createDevCa({ trustDomain: TD, clock });
  });

  async function dirSource() {
    const dir = await freshDir();
    const svid = await ca.issue({ spiffeId: ID });
    await writeSvidDir(dir, filesOf(svid));
    const events: SvidLifecycleEvent[] = [];
    const source = await createDirSource({ dir, clock, pollMs: 60_000, onLifecycle: (e) => events.push(e) });
    return { dir, svid, source, events };
  }

  test('one warning past the renewal point, one error past expiry, one info on the renewal that follows', async (t) => {
    const { dir, svid, source, events } = await dirSource();
    t.after(() => source.close());
    const s = source.getX509Svid();
    const renewAt = renewalPoint(s.notBefore, s.notAfter);
    assert.equal(source.status().renewAt, new Date(renewAt).toISOString());

    jumpTo(Math.ceil(renewAt) - 1);
    source.getX509Svid();
    assert.deepEqual(kinds(events), [], 'nothing before the renewal point');

    jumpTo(Math.ceil(renewAt));
    for (let i = 0; i < 100; i++) source.getX509Svid(); // every request uses it: still one line
    source.status();
    assert.deepEqual(kinds(events), ['renewal-overdue']);
    const overdue = events[0]! as Extract<SvidLifecycleEvent, { kind: 'renewal-overdue' }>;
    assert.equal(overdue.svid.spiffeId, ID);
    assert.equal(overdue.svid.serialNumber, svid.serialNumber);
    assert.equal(overdue.svid.notAfter, s.notAfter);
    assert.equal(overdue.source.kind, 'dir');

    jumpTo(s.notAfter);
    source.getX509Svid(); // still valid at notAfter itself
    assert.deepEqual(kinds(events), ['renewal-overdue']);
    jumpTo(s.notAfter + 1);
    for (let i = 0; i < 10; i++) assert.throws(() => source.getX509Svid(), { code: 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE' });
    assert.equal(source.status().state, 'expired');
    assert.deepEqual(kinds(events), ['renewal-overdue', 'expired']);

    const renewed = await ca.issue({ spiffeId: ID });
    await writeSvidDir(dir, filesOf(renewed));
    await source.reload();
    assert.equal(source.getX509Svid().chain[0]!.serialNumber, renewed.serialNumber);
    assert.deepEqual(kinds(events), ['renewal-overdue', 'expired', 'renewed']);
    const info = events[2]! as Extract<SvidLifecycleEvent, { kind: 'renewed' }>;
    assert.equal(info.previous, 'expired');
    assert.equal(info.svid.serialNumber, renewed.serialNumber);
    // The new SVID starts fresh.
    source.getX509Svid();
    assert.equal(events.length, 3);
  });

  test('a renewal in time says nothing; a renewal after the warning says so', async (t) => {
    const { dir, source, events } = await dirSource();
    t.after(() => source.close());
    const s = source.getX509Svid();
    jumpTo(s.notBefore + (s.notAfter - s.notBefore) * 0.5);
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
    await source.reload();
    source.getX509Svid();
    assert.deepEqual(kinds(events), [], 'renewed at half-life: no line at all');

    const s2 = source.getX509Svid();
    jumpTo(renewalPoint(s2.notBefore, s2.notAfter) + 1000);
    source.getX509Svid();
    assert.deepEqual(kinds(events), ['renewal-overdue']);
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
    await source.reload();
    assert.deepEqual(kinds(events), ['renewal-overdue', 'renewed']);
    assert.equal((events[1] as Extract<SvidLifecycleEvent, { kind: 'renewed' }>).previous, 'renewal-overdue');
  });

  test('an SVID that arrives already past its renewal point warns once, on first use', async (t) => {
    const dir = await freshDir();
    const old = await ca.issue({ spiffeId: ID, notBefore: clock.now() - 50 * 60_000 }); // 50 of ~60 min gone
    await writeSvidDir(dir, filesOf(old));
    const events: SvidLifecycleEvent[] = [];
    const source = await createDirSource({ dir, clock, onLifecycle: (e) => events.push(e) });
    t.after(() => source.close());
    source.getX509Svid();
    source.getX509Svid();
    assert.deepEqual(kinds(events), ['renewal-overdue']);
  });

  test('frozen past expiry in one step: the error only (no stale warning first)', async (t) => {
    const { source, events } = await dirSource();
    t.after(() => source.close());
    jumpTo(source.getX509Svid().notAfter + 60_000);
    assert.throws(() => source.getX509Svid());
    assert.deepEqual(kinds(events), ['expired']);
  });

  test('dev CA: renewals at 50 % ± 10 % never warn; a CA that stops answering warns at 75 % with its error', async (t) => {
    const real = ca;
    let down = false;
    const flaky = {
      trustDomain: real.trustDomain,
      clock: real.clock,
      signCsr: (csr: string, o: Parameters<DevCa['signCsr']>[1]) => (down ? Promise.reject(new Error('CA unreachable')) : real.signCsr(csr, o)),
    } as unknown as DevCa;
    const events: SvidLifecycleEvent[] = [];
    const source = await createDevCaSource({ ca: flaky, spiffeId: ID, clock, random: () => 0.999, onLifecycle: (e) => events.push(e), onError: () => {} });
    t.after(() => source.close());
    for (let i = 0; i < 3; i++) {
      const s = source.getX509Svid();
      jumpTo(source.rotateAt);
      source.getX509Svid(); // use-time renewal
      await waitFor(() => source.getX509Svid() !== s, 2_000, 'the renewal');
    }
    assert.deepEqual(kinds(events), []);
    down = true;
    const s = source.getX509Svid();
    jumpTo(source.rotateAt);
    source.getX509Svid();
    await waitFor(() => source.status().lastError !== undefined, 2_000, 'the failed renewal');
    jumpTo(renewalPoint(s.notBefore, s.notAfter));
    source.getX509Svid();
    assert.deepEqual(kinds(events), ['renewal-overdue']);
    const { level, message } = describeLifecycle(events[0]!);
    assert.equal(level, 'warn');
    assert.match(message, /The in-process dev CA could not renew it; see the errors logged before this one\. Last error: CA unreachable$/);
  });
});

describe('the log lines', () => {
  const svid = { spiffeId: ID, serialNumber: '1a2b3c', notAfter: Date.UTC(2031, 0, 1, 12, 0, 0) };
  const source = { kind: 'dir', describe: 'identity directory /run/spiffe' };
  test('warning: who, which certificate, until when, how long is left, what to do', () => {
    const { level, message } = describeLifecycle({ kind: 'renewal-overdue', svid, renewAt: Date.UTC(2031, 0, 1, 11, 0, 0), now: Date.UTC(2031, 0, 1, 11, 45, 0), source });
    assert.equal(level, 'warn');
    assert.equal(
      message,
      'identity: the X.509-SVID for spiffe://cluster.local/ns/default/sa/orders (serial 1a2b3c, valid until 2031-01-01T12:00:00.000Z) ' +
        'passed its renewal point (75 % of its lifetime, at 2031-01-01T11:00:00.000Z) and no renewal has arrived from the identity ' +
        'directory /run/spiffe; it expires in 15 min, after which the mesh refuses to serve or call. Check the process that writes ' +
        'svid.pem there (spiffe-helper and its SPIRE agent, a secret sync, or `sidecarless svid issue`).',
    );
  });
  test('error: expired, fail closed, the error code callers see, what to do and the last error', () => {
    const { level, message } = describeLifecycle({ kind: 'expired', svid, source: { ...source, lastError: '/run/spiffe/svid.pem does not exist' } });
    assert.equal(level, 'error');
    assert.match(message, /^identity: the X\.509-SVID for spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders \(serial 1a2b3c, valid until 2031-01-01T12:00:00\.000Z\) has expired/);
    assert.match(message, /inbound connections are refused and outbound calls fail \(ERR_SIDECARLESS_IDENTITY_UNAVAILABLE\) until a valid SVID arrives/);
    assert.match(message, /Last error: \/run\/spiffe\/svid\.pem does not exist$/);
  });
  test('createMesh\'s lines go to the mesh logger at their level; a logger with warn() only still gets the error', () => {
    const got: string[] = [];
    const full = workloadSourceOptions({ spiffeId: ID, trustDomain: TD, namespace: 'default', service: 'orders' }, {
      info: (m) => void got.push(`info ${m}`),
      warn: (m) => void got.push(`warn ${m}`),
      error: (m) => void got.push(`error ${m}`),
    });
    full.onLifecycle({ kind: 'expired', svid, source });
    assert.match(got[0]!, /^error identity: the X\.509-SVID for .* has expired/);
    const warnOnly = workloadSourceOptions({ spiffeId: ID, trustDomain: TD, namespace: 'default', service: 'orders' }, { warn: (m: string) => void got.push(`warn ${m}`) } as never);
    warnOnly.onLifecycle({ kind: 'expired', svid, source });
    assert.match(got[1]!, /^warn identity: the X\.509-SVID for .* has expired/);
    assert.deepEqual(full.expect, { spiffeId: ID, derivedFrom: { trustDomain: TD, namespace: 'default', service: 'orders' } });
  });

  test('info: renewed, after what', () => {
    const { level, message } = describeLifecycle({ kind: 'renewed', svid, previous: 'renewal-overdue', source: { kind: 'workload-api', describe: 'identity source (workload-api)' } });
    assert.equal(level, 'info');
    assert.match(message, /^identity: renewed after the previous SVID had passed its renewal point: now the X\.509-SVID for .*orders \(serial 1a2b3c/);
  });
});

describe('through createMesh: log lines once per SVID, /ready flips at expiry and back', () => {
  test('virtual clock, real files, the admin endpoint', async (t) => {
    const clock = new VirtualClock(Date.now());
    const ca = await createDevCa({ trustDomain: TD, clock });
    const dir = await freshDir();
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
    const lines: Array<{ level: string; msg: string }> = [];
    const logger: Logger = {
      info: (msg) => void lines.push({ level: 'info', msg }),
      warn: (msg) => void lines.push({ level: 'warn', msg }),
      error: (msg) => void lines.push({ level: 'error', msg }),
    };
    const mesh = await createMesh({ service: 'orders', logger, identity: { dir }, admin: { port: 0 } }, { clock });
    t.after(() => mesh.close());
    const ready = async () => {
      const r = await fetch(`http://127.0.0.1:${mesh.admin!.address().port}/ready`);
      return { status: r.status, body: await r.text() };
    };
    const life = (line: { msg: string }) => line.msg.startsWith('identity: ');
    const s = mesh.identity.getX509Svid();
    assert.equal((await ready()).status, 200);

    clock.set(renewalPoint(s.notBefore, s.notAfter) + 1);
    assert.equal((await ready()).status, 200, 'past the renewal point the SVID still serves');
    mesh.stats();
    assert.deepEqual(lines.filter(life).map((l) => l.level), ['warn']);
    assert.match(lines.find(life)!.msg, new RegExp(`${ID} \\(serial ${s.chain[0]!.serialNumber}, valid until ${new Date(s.notAfter).toISOString().replace(/\./g, '\\.')}\\) passed its renewal point`));

    clock.set(s.notAfter + 1);
    const r = await ready();
    assert.equal(r.status, 503);
    assert.match(r.body, /not ready: identity: the X\.509-SVID for .* expired/);
    mesh.stats();
    await ready();
    assert.deepEqual(lines.filter(life).map((l) => l.level), ['warn', 'error']);

    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
    await (mesh.identity as DirSource).reload();
    assert.equal((await ready()).status, 200);
    assert.deepEqual(lines.filter(life).map((l) => l.level), ['warn', 'error', 'info']);
    assert.match(lines.filter(life)[2]!.msg, /^identity: renewed after the previous SVID had expired/);
  });
});

describe('timers: the source\'s own (unref()ed) timers report with nobody using the SVID', () => {
  test('virtual time: the warning exactly at the renewal point, the error just past expiry, the info when the poll finds the renewal', async (t) => {
    const clock = new VirtualClock(Date.UTC(2031, 4, 1));
    const ca = await createDevCa({ trustDomain: TD, clock });
    const dir = await freshDir();
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
    const events: Array<{ kind: string; at: number }> = [];
    const source = await createDirSource({ dir, clock, pollMs: 60_000, onLifecycle: (e) => events.push({ kind: e.kind, at: clock.now() }) });
    t.after(() => source.close());
    const { notBefore, notAfter } = source.getX509Svid(); // the only use
    const renewAt = Math.ceil(renewalPoint(notBefore, notAfter));
    await clock.setAsync(renewAt - 1);
    assert.deepEqual(events, [], 'nothing before the renewal point');
    await clock.setAsync(renewAt);
    assert.deepEqual(events, [{ kind: 'renewal-overdue', at: renewAt }]);
    await clock.setAsync(notAfter);
    assert.equal(events.length, 1, 'still valid at notAfter itself');
    await clock.setAsync(notAfter + 1);
    assert.deepEqual(events[1], { kind: 'expired', at: notAfter + 1 });
    assert.equal(source.status().state, 'expired');
    assert.equal(clock.pending().length, 1, 'only the poll is left: the lifecycle timer does not re-arm past expiry');
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
    await clock.advanceAsync(60_000); // the poll (or the watch's debounce) reads the new files
    assert.deepEqual(kinds(events as never), ['renewal-overdue', 'expired', 'renewed']);
    assert.equal(source.status().state, 'ready');
  });

  test('an SVID valid for years arms no timer that fires early: nothing happens for 2^31 ms and more (virtual time)', async (t) => {
    // The system clock's part (a wait past 2^31 - 1 ms neither fires at once nor warns of overflow)
    // is test/clock.test.ts's; here the source must arm its lifecycle timer for the renewal point,
    // years away, and nothing may fire before it.
    const clock = new VirtualClock(Date.UTC(2031, 4, 1));
    const ca = await createDevCa({ trustDomain: TD, clock, caTtlMs: 4 * 365 * 24 * 3600_000 });
    const dir = await freshDir();
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID, ttlMs: 3 * 365 * 24 * 3600_000 })));
    const events: SvidLifecycleEvent[] = [];
    const day = 24 * 3600_000;
    const source = await createDirSource({ dir, clock, pollMs: 30 * day, onLifecycle: (e) => events.push(e) });
    t.after(() => source.close());
    const { notBefore, notAfter } = source.getX509Svid();
    const renewAt = Math.ceil(renewalPoint(notBefore, notAfter));
    assert.ok(renewAt - clock.now() > 2 ** 31, 'the renewal point is past what one setTimeout can wait');
    assert.ok(clock.pending().some((at) => at >= renewAt && at <= renewAt + 1), `a timer at the renewal point (${clock.pending().join(', ')})`);
    await clock.advanceAsync(2 ** 31 + day);
    assert.deepEqual(events, [], 'nothing fires past the 2^31 ms mark');
    await clock.setAsync(renewAt - 1);
    assert.deepEqual(events, [], 'nothing before the renewal point');
    await clock.setAsync(renewAt + 1);
    assert.deepEqual((events as SvidLifecycleEvent[]).map((e) => e.kind), ['renewal-overdue'], 'and the warning when it comes');
  });

  test('the timers never keep a process alive (a child with a running mesh and no close() exits by itself)', async () => {
    const ca = await createDevCa({ trustDomain: TD });
    const dir = await freshDir();
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
    const fixture = fileURLToPath(new URL('./fixtures/running-mesh-exits.ts', import.meta.url));
    const r = await run(process.execPath, ['--import', 'tsx', fixture, dir], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /started spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders renewAt \d{4}-/);
  });
});
