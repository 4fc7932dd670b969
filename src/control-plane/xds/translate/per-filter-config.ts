/**
 * `typed_per_filter_config` (on a RouteConfiguration, VirtualHost, Route or ClusterWeight): a
 * filter's per-route override, by filter name. istiod puts VirtualService fault injection and CORS
 * here. sidecarless runs no HTTP filters on a client route, so an entry is refused naming what it
 * holds, except an empty HTTPFault (no delay, no abort: no fault, as the listener's placeholder
 * fault filter). Pure.
 */
import type { Any } from '../../../proto/google/protobuf/any.js';
import { typeNameOf } from '../../../proto/any-pack.js';
import { type Findings, quote } from './result.js';

const FAULT = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
const KNOWN: Record<string, string> = {
  [FAULT]: 'fault injection (VirtualService fault) is not supported: remove the fault',
  'envoy.extensions.filters.http.cors.v3.CorsPolicy': 'CORS (VirtualService corsPolicy) is not supported: remove the corsPolicy',
  'envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute': 'stateful sessions are not supported',
  'envoy.extensions.filters.http.rbac.v3.RBACPerRoute': 'per-route RBAC is not supported on a client route',
  'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit': 'rate limiting is not supported',
};

export function checkPerFilterConfig(map: ReadonlyMap<string, Any>, f: Findings, at: string): void {
  for (const [name, any] of map) {
    const eat = `${at === '' ? '' : `${at}.`}typed_per_filter_config[${quote(name)}]`;
    const type = typeNameOf(any.typeUrl);
    if (type === FAULT && any.value.length === 0) f.note(eat, 'no effect: an empty HTTPFault injects no fault');
    else f.refuse(eat, KNOWN[type] ?? `a per-route config for filter ${quote(name)} (${quote(type)}) is not supported: sidecarless runs no HTTP filters on a client route`);
  }
}
