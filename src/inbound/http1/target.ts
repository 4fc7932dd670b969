import { type IncomingMessage } from 'node:http';
import { type CheckedTarget, badTarget as bad, checkRequestTarget } from '../target-check.js';

export type { CheckedTarget } from '../target-check.js';

/** Process-wide key under which a request's checked target is kept (ESM and CJS copies share it). */
const kTarget = Symbol.for('sidecarless.v1.target');

type TargetCarrier = IncomingMessage & { [kTarget]?: CheckedTarget };

/**
 * Checks and normalizes a request once (idempotent): the target (normalizeTarget; `req.url` is
 * rewritten in place, so the app routes exactly what the policy judges), the framing, and the
 * host — RFC 9110 grammar, a single Host, an absolute-form authority equal to Host. CONNECT's
 * authority-form target must be `host:port` and equal Host; its path is ''.
 */
export function checkTarget(req: IncomingMessage): CheckedTarget {
  const r = req as TargetCarrier;
  const cached = r[kTarget];
  if (cached) return cached;
  const checked = check(req);
  r[kTarget] = checked;
  return checked;
}

function check(req: IncomingMessage): CheckedTarget {
  const framing = framingProblem(req);
  if (framing) return bad(framing);
  const hosts = hostHeaders(req);
  if (hosts > 1) return bad('more than one Host header');
  const host = req.headers.host;
  if (host === undefined && hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
    // RFC 9112 §3.2. Servers run with Node's own check off (it answers 400 but still hands a
    // request pipelined behind to the app), so the gate answers it and closes.
    return bad('an HTTP/1.1 request without Host');
  }
  const t = checkRequestTarget(req.method ?? '', req.url ?? '', host ?? '', host !== undefined);
  if (t.ok && req.method !== 'CONNECT' && t.target !== req.url && t.path !== '*') req.url = t.target;
  return t;
}

/** How many Host fields the request carried (Node keeps only the first in `headers`). */
function hostHeaders(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

/**
 * A request's Transfer-Encoding must end in `chunked` (RFC 9112 §6.3: otherwise 400 and close).
 * Node's parser refuses such a request only after its 'request' event, i.e. after the app started.
 */
function framingProblem(req: IncomingMessage): string | undefined {
  const te = req.headers['transfer-encoding'];
  return te === undefined || /(?:^|,)[ \t]*chunked[ \t]*$/i.test(te) ? undefined : `Transfer-Encoding "${te}" does not end in chunked`;
}
