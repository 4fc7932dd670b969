/**
 * The transport-neutral part of checking a request's target and host: what HTTP/1.1 (request line
 * + Host, http1/target.ts) and HTTP/2 (`:path` + `:authority`, http2/target.ts) have in common once
 * each transport has found its one target and its one host. The host must follow RFC 9110's
 * grammar, the target is normalized (normalizeTarget), an absolute-form authority must equal the
 * host, and CONNECT's authority-form target must be `host:port` (its path is ''). Pure.
 */
import { hostProblem, sameAuthority } from '../policy/authority.js';
import { type NormalizedTarget, normalizeTarget } from '../policy/index.js';

/** A request as the gate judges it: the normalized path and the one host the app will read. */
export type CheckedTarget =
  | { readonly ok: true; readonly path: string; readonly host: string; readonly target: string }
  | { readonly ok: false; readonly reason: string };

export const badTarget = (reason: string): CheckedTarget => ({ ok: false, reason });

/**
 * Checks `target` (as sent) and `host` (the value the app will read; '' when the request had none).
 * `hostGiven`: the request carried a host at all (an absolute-form authority is then compared to it).
 * `hostLabel` names the host field in reasons (`Host`, `:authority`).
 */
export function checkRequestTarget(method: string, target: string, host: string, hostGiven: boolean, hostLabel = 'Host'): CheckedTarget {
  const why = hostProblem(host);
  if (why) return badTarget(`${hostLabel}: ${why}`);
  if (method === 'CONNECT') return connectTarget(target, host, hostLabel);
  const t: NormalizedTarget = normalizeTarget(target, method);
  if (!t.ok) return badTarget(t.reason);
  if (t.authority !== undefined) {
    const a = hostProblem(t.authority);
    if (a) return badTarget(`the target's authority: ${a}`);
    if (hostGiven && !sameAuthority(t.authority, host)) return badTarget(`the target's authority "${t.authority}" is not the ${hostLabel} "${host}"`);
  }
  return { ok: true, path: t.path, host: t.authority ?? host, target: t.target };
}

function connectTarget(target: string, host: string, hostLabel: string): CheckedTarget {
  const why = hostProblem(target, true);
  if (why) return badTarget(`CONNECT target: ${why}`);
  if (host !== '' && !sameAuthority(target, host)) return badTarget(`the CONNECT target "${target}" is not the ${hostLabel} "${host}"`);
  return { ok: true, path: '', host: target, target };
}
