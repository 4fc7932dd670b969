/**
 * HTTP/2 (node:http2) in front of the transport-neutral gate: the stream's pseudo-headers are
 * checked and `:path` normalized (target.ts: 400 when malformed, `:path` rewritten in the stream's
 * header object so every listener reads what is judged), the stream is described as the same
 * PolicyRequest an HTTP/1.1 request is, and the gate decides (403 when denied).
 */
import { deniedStatus } from '../pending-port.js';
import { type PeerIdentity } from '../../identity/peer-identity.js';
import { type PolicyRequest } from '../../policy/index.js';
import { EXACT_ROUTING, type RouterSemantics } from '../../policy/router-semantics.js';
import { type Verdict } from '../http1/judge.js';
import { type PolicyGate } from '../policy-gate.js';
import { type CheckedTarget } from '../target-check.js';
import { type Http2Request } from './request.js';
import { checkHttp2Target } from './target.js';

const ADMITTED: Verdict = Object.freeze({ ok: true });

/** Checks the stream's target once and normalizes `:path` in place. */
export function checkedHttp2Target(r: Http2Request): CheckedTarget {
  if (r.target) return r.target;
  const t = checkHttp2Target(r.headers, r.rawHeaders);
  r.target = t;
  if (t.ok && t.path !== '*' && t.target !== r.url) {
    r.headers[':path'] = t.target;
    const raw = r.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i] === ':path') raw[i + 1] = t.target;
    r.url = t.target;
  }
  return t;
}

/** Judges one h2 stream from `peer` (null: unauthenticated). The subject published is the request view. */
export function judgeHttp2(
  gate: PolicyGate<object>,
  r: Http2Request,
  peer: PeerIdentity | null,
  routing: RouterSemantics = EXACT_ROUTING,
  recheck = false,
): Verdict {
  const t = checkedHttp2Target(r);
  if (!t.ok) {
    gate.malformed({ peer, sourceIp: r.socket?.remoteAddress ?? '', method: r.method, reason: t.reason }, r);
    return { ok: false, status: 400, reason: t.reason };
  }
  const alike = gate.alikeFor(t.path, r.method, routing);
  const decision = gate.decide(http2PolicyRequest(r, peer, t, alike), { routing, recheck, subject: r });
  return decision.allowed ? ADMITTED : { ok: false, status: deniedStatus(decision.rule), reason: `denied by ${decision.rule}` };
}

/** What the gate sees of an h2 stream whose target checked out: the same fields as HTTP/1.1. */
export function http2PolicyRequest(r: Http2Request, peer: PeerIdentity | null, t: CheckedTarget & { ok: true }, alike?: PolicyRequest['alike']): PolicyRequest {
  const socket = r.socket;
  const headers = r.headers;
  return {
    peer,
    sourceIp: socket?.remoteAddress ?? '',
    method: r.method,
    path: t.path,
    host: t.host,
    port: socket?.localPort ?? 0,
    ...(typeof socket?.servername === 'string' && { sni: socket.servername }),
    header: (name) => {
      // `host` is the authority the policy judged (h2 carries it as :authority).
      if (name === 'host') return t.host;
      const v = headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    },
    ...(alike && { alike }),
  };
}
