/**
 * `kJudgeFronted` (hooks.ts), MINIMAL: a request whose TLS a platform front end terminated is
 * judged unauthenticated (peer null) by the same policy as every other request: target and host
 * checked and normalized as node:http's are (target-check.ts), then PolicyGate.decide; 400 for a
 * malformed request, 403 for a denial. JWT-SVIDs and forwarded client certificates are the JWT
 * helper's version of this file (it replaces this one at merge).
 */
import { type PolicyRequest } from '../policy/model.js';
import { checkRequestTarget } from '../inbound/target-check.js';
import { type FrontedRequest, type FrontedVerdict, type JudgeFrontedHook } from './hooks.js';
import { type MeshParts } from './parts.js';

export const REQUEST_MALFORMED = 'ERR_SIDECARLESS_REQUEST_MALFORMED';
export const REQUEST_DENIED = 'ERR_SIDECARLESS_REQUEST_DENIED';

export function judgeFronted(p: MeshParts): JudgeFrontedHook {
  const gate = p.inbound.gate;
  return async (r: FrontedRequest): Promise<FrontedVerdict> => {
    const t = checkRequestTarget(r.method, r.target, r.host ?? '', r.host !== undefined);
    if (!t.ok) {
      gate.malformed({ peer: null, sourceIp: r.sourceIp, method: r.method, reason: t.reason });
      return { allowed: false, status: 400, message: `malformed request: ${t.reason}`, code: REQUEST_MALFORMED };
    }
    const request: PolicyRequest = {
      peer: null,
      sourceIp: r.sourceIp,
      method: r.method,
      path: t.path,
      host: t.host,
      port: r.port,
      header: (name) => {
        const v = r.headers[name];
        return Array.isArray(v) ? v.join(',') : (v as string | undefined);
      },
    };
    const decision = gate.decide(request, { subject: {} as never }); // no node:http request to observe: the decision is still counted
    if (!decision.allowed) return { allowed: false, status: 403, message: `denied by ${decision.rule}`, code: REQUEST_DENIED };
    return { allowed: true, peer: null, path: t.path, decision };
  };
}
