/**
 * HTTP/1.1 (node:http) in front of the transport-neutral gate: the request's target and Host are
 * checked and normalized (target.ts: 400 when malformed, `req.url` rewritten to what is judged),
 * the request is described as a PolicyRequest, and the gate decides (403 when denied). The
 * responders (responders.ts) write the verdict as an HTTP response or on a raw socket.
 */
import { deniedStatus } from '../pending-port.js';
import { type IncomingMessage } from 'node:http';
import { type TLSSocket } from 'node:tls';
import { type PeerIdentity } from '../../identity/peer-identity.js';
import { type PolicyRequest } from '../../policy/index.js';
import { EXACT_ROUTING, type RouterSemantics } from '../../policy/router-semantics.js';
import { type PolicyGate } from '../policy-gate.js';
import { type CheckedTarget, checkTarget } from './target.js';

/** The verdict on one HTTP request: admitted, or refused with a status and why. */
export type Verdict = { readonly ok: true } | { readonly ok: false; readonly status: 400 | 403 | 503; readonly reason: string };

const ADMITTED: Verdict = Object.freeze({ ok: true });

/**
 * Judges one node:http request from `peer` (its connection's verified peer, null when
 * unauthenticated). `routing`: the spellings the app's router serves alike; `recheck`: admitted
 * before under narrower semantics.
 */
export function judgeHttp1(
  gate: PolicyGate<IncomingMessage>,
  req: IncomingMessage,
  peer: PeerIdentity | null,
  routing: RouterSemantics = EXACT_ROUTING,
  recheck = false,
): Verdict {
  const t = checkTarget(req);
  if (!t.ok) {
    const socket = req.socket as TLSSocket;
    gate.malformed({ peer, sourceIp: socket.remoteAddress ?? '', method: req.method ?? '', reason: t.reason }, req);
    return { ok: false, status: 400, reason: t.reason };
  }
  const alike = gate.alikeFor(t.path, req.method ?? '', routing);
  const decision = gate.decide(http1PolicyRequest(req, peer, t, alike), { routing, recheck, subject: req });
  return decision.allowed ? ADMITTED : { ok: false, status: deniedStatus(decision.rule), reason: `denied by ${decision.rule}` };
}

/** What the gate sees of a node:http request whose target checked out. */
export function http1PolicyRequest(req: IncomingMessage, peer: PeerIdentity | null, t: CheckedTarget & { ok: true }, alike?: PolicyRequest['alike']): PolicyRequest {
  const socket = req.socket as TLSSocket;
  const headers = req.headers;
  return {
    peer,
    sourceIp: socket.remoteAddress ?? '',
    method: req.method ?? '',
    path: t.path,
    host: t.host,
    port: socket.localPort ?? 0,
    ...(typeof socket.servername === 'string' && { sni: socket.servername }),
    header: (name) => {
      const v = headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    },
    ...(alike && { alike }),
  };
}
