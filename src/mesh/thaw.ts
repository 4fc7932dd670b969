/**
 * `kThaw` (hooks.ts): what a mesh checks at the start of each invocation of a serverless function,
 * whose process may have been frozen since the last one (its timers did not run; the servers'
 * did). In order: the identity source renews if due (dir: re-read; a CA: issue now) and an expired
 * SVID blocks, up to the identity's startTimeout, until a valid one arrives, else fails closed;
 * then, after a gap of IDLE_GAP_MS or more, every pooled connection with nothing in flight is
 * dropped (the server's keep-alive timer ran while undici's did not: reusing such a socket is the
 * first-request ECONNRESET); beside these, a control plane whose state may be stale after the gap
 * refreshes it, bounded (ControlPlane.thaw: xDS opens a new stream after XDS_THAW_GAP_MS). Concurrent
 * calls share one check.
 */
import { type Clock } from '../clock.js';
import { IdentityUnavailableError } from '../errors.js';
import { type X509Source } from '../sources/source.js';
import { type ThawHook } from './hooks.js';
import { DEFAULT_START_TIMEOUT_MS } from './identity.js';
import { type MeshParts } from './parts.js';

/**
 * A gap this long since the previous invocation began drops idle pooled connections: below every
 * keep-alive in common use (Node's server 5 s, undici's 4 s less the server's hint), above
 * back-to-back invocations of a warm function, which keep their connections.
 */
export const IDLE_GAP_MS = 1_000;

export function createThaw(p: MeshParts): ThawHook {
  const startTimeout = startTimeoutOf(p.config.identity);
  let last = p.clock.now();
  let running: Promise<void> | undefined;
  const run = async () => {
    const now = p.clock.now();
    const gap = now - last;
    last = now;
    // The control plane's refresh (xDS after a long freeze) runs beside the identity's: neither needs the other.
    const xds = p.controlPlane.thaw?.(gap);
    await p.source.refreshIfDue?.();
    await validSvid(p.source, p.clock, startTimeout, gap);
    if (gap >= IDLE_GAP_MS) await p.outbound.dropIdleConnections();
    await xds;
  };
  return () =>
    (running ??= run().finally(() => {
      running = undefined;
    }));
}

function startTimeoutOf(identity: unknown): number {
  const id = identity as { startTimeout?: unknown; workloadApi?: { startTimeout?: unknown } } | undefined;
  const t = id?.workloadApi?.startTimeout ?? id?.startTimeout;
  return typeof t === 'number' && t >= 0 ? t : DEFAULT_START_TIMEOUT_MS; // 0 is createMesh's too: do not wait
}

/** Resolves once the source serves a valid SVID; rejects after `timeoutMs` saying it expired while frozen. */
function validSvid(source: X509Source, clock: Clock, timeoutMs: number, gap: number): Promise<void> {
  const problem = () => {
    try {
      source.getX509Svid();
      return undefined;
    } catch (e) {
      return e as Error;
    }
  };
  const first = problem();
  if (!first) return Promise.resolve();
  const expired = source.status().state === 'expired';
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      off();
      timer.cancel();
      if (err) reject(err);
      else resolve();
    };
    const off = source.onUpdate(() => {
      if (!problem()) done();
    });
    // Kept alive: the invocation awaits this answer.
    const timer = clock.setTimeout(
      () => {
        const why = problem() ?? first;
        const what = expired ? 'the X.509-SVID expired while the function was frozen' : 'the function has no valid X.509-SVID';
        done(
          new IdentityUnavailableError(
            `${what} (${Math.round(gap / 1000)} s since the previous invocation) and no valid one arrived within ${timeoutMs} ms of the thaw: ${why.message}`,
            { cause: why },
          ),
        );
      },
      timeoutMs,
      { keepAlive: true },
    );
    void source.refreshIfDue?.().then(() => {
      if (!problem()) done();
    });
  });
}
