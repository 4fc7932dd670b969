// Renewal after a freeze: a child process holding an Istio CA source (test/fixtures/istio-ca/
// source-child.ts) is SIGSTOPped across its SVID's renewal point (or its expiry) and SIGCONTed, as a
// serverless platform freezes and thaws a function. It must renew at its next use and never serve an
// expired SVID; the test CA's record says when the renewal was asked.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { startIstioCa } from '../helpers/istio-ca-server.js';

const ID = 'spiffe://cluster.local/ns/default/sa/orders';
const CHILD = fileURLToPath(new URL('../fixtures/istio-ca/source-child.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Line {
  event: 'ready' | 'renewed' | 'use' | 'use-error';
  t: number;
  serial?: string;
  notBefore?: number;
  notAfter?: number;
  rotateAt?: number;
  message?: string;
}

function startChild(t: { after(fn: () => Promise<void>): void }, args: object) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Line[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(JSON.parse(l) as Line);
    for (const w of [...waiters]) w();
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  });
  /** The next line of this kind after the `after`-th line. */
  const next = (event: Line['event'] | Array<Line['event']>, after = 0, timeoutMs = 15_000) =>
    new Promise<Line>((resolve, reject) => {
      const kinds = Array.isArray(event) ? event : [event];
      const check = () => {
        const hit = lines.slice(after).find((l) => kinds.includes(l.event));
        if (!hit) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => reject(new Error(`no ${kinds.join('/')} line from the child: ${JSON.stringify(lines)}`)), timeoutMs);
      waiters.add(check);
      check();
    });
  const use = () => {
    const at = lines.length;
    child.stdin!.write('use\n');
    return next(['use', 'use-error'], at);
  };
  return { child, lines, next, use };
}

describe('an Istio CA source frozen (SIGSTOP) and thawed (SIGCONT)', () => {
  test('frozen across its renewal point with its timers missed: it renews at its next use, which still gets the valid SVID', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ID } });
    const c = startChild(t, { address: ca.address, root: ca.rootFile, token: 'tok', ttlMs: 4_000, timers: 'missed', spiffeId: ID });
    const ready = await c.next('ready');
    c.child.kill('SIGSTOP');
    while (Date.now() < ready.rotateAt! + 200) await sleep(20);
    assert.ok(Date.now() < ready.notAfter! - 500, 'still before expiry');
    c.child.kill('SIGCONT');
    const thawed = Date.now();
    await sleep(300);
    assert.equal(ca.calls.length, 1, 'no renewal without a use: the timers were missed');
    const first = await c.use();
    assert.equal(first.event, 'use');
    assert.equal(first.serial, ready.serial, 'the SVID is still valid: served while the renewal runs');
    const renewed = await c.next('renewed');
    assert.notEqual(renewed.serial, ready.serial);
    assert.equal((await ca.waitForCalls(2)).length, 2); // the server's record may come after the answer
    assert.ok(ca.calls[1]!.t >= thawed, 'the renewal was asked after the thaw');
    const second = await c.use();
    assert.equal(second.serial, renewed.serial);
  });

  test('frozen past its expiry: the first use after the thaw is refused (never the expired SVID), the renewal follows', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ID } });
    const c = startChild(t, { address: ca.address, root: ca.rootFile, token: 'tok', ttlMs: 3_000, timers: 'real', spiffeId: ID });
    const ready = await c.next('ready');
    c.child.kill('SIGSTOP');
    while (Date.now() < ready.notAfter! + 300) await sleep(20);
    const at = c.lines.length;
    c.child.stdin!.write('use\n'); // waiting in the pipe when the process wakes
    c.child.kill('SIGCONT');
    const thawed = Date.now();
    const first = await c.next(['use', 'use-error'], at);
    if (first.event === 'use') assert.notEqual(first.serial, ready.serial, 'never the expired SVID');
    else assert.match(first.message!, /expired at .* Refusing to serve or call with it/);
    const renewed = await c.next('renewed');
    assert.notEqual(renewed.serial, ready.serial);
    assert.ok((await ca.waitForCalls(2))[1]!.t >= thawed - 50, 'renewed after the thaw');
    const again = await c.use();
    assert.equal(again.serial, renewed.serial);
  });
});
