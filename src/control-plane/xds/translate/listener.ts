/**
 * An outbound (client-side) Listener → where its routes come from. It must be an API listener
 * (`api_listener` holding an HttpConnectionManager, gRFC A27): the mesh opens no sockets for it,
 * so socket-side fields (filter chains, listener filters, use_original_dst) are reasons. The HCM
 * gives an RDS name (over ADS or `self`) or an inline route_config (translated by route.ts, its
 * reasons named under this Listener), and a default request timeout
 * (common_http_protocol_options.max_stream_duration). HTTP filters: the router (last), an empty
 * fault filter (istiod always sends one; empty means no fault), optional or disabled filters
 * (skipped with a note, Envoy's meaning); any other filter is a reason. Pure.
 */
import type { Listener } from '../../../proto/envoy/config/listener/v3/listener.js';
import { type HttpConnectionManager, HttpConnectionManagerCodec, type HttpFilter } from '../../../proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { RouterCodec } from '../../../proto/envoy/extensions/filters/http/router/v3/router.js';
import { isAny, typeNameOf, unpackAny } from '../../../proto/any-pack.js';
import { Findings, durationMs, quote, type Translation } from './result.js';
import { routeTableOf, type RouteTable } from './route.js';
import { checkConfigSource } from './config-source.js';
import { API_LISTENER, HCM, HCM_HTTP_PROTOCOL_OPTIONS, HTTP_FILTER, LISTENER, RDS } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

export interface ListenerSpec {
  readonly name: string;
  /** Routes by RDS name (subscribe to it), or inline. */
  readonly routes: { readonly rds: string } | { readonly inline: RouteTable };
  /** The HCM's default request timeout, for routes that set none. */
  readonly defaultTimeoutMs?: number;
}

const FAULT = 'envoy.extensions.filters.http.fault.v3.HTTPFault';

function checkFilters(filters: readonly HttpFilter[], f: Findings, at: string): void {
  const last = filters.length - 1;
  if (last < 0 || filters[last]!.typedConfig === undefined || !isAny(filters[last]!.typedConfig!, RouterCodec)) {
    f.refuse(`${at}.http_filters`, 'the last HTTP filter must be the router (envoy.extensions.filters.http.router.v3.Router)');
  }
  filters.forEach((h, i) => {
    const hat = `${at}.http_filters[${i}]`;
    refuseUnknown(h, f, hat, HTTP_FILTER);
    const type = h.typedConfig ? typeNameOf(h.typedConfig.typeUrl) : '';
    if (h.typedConfig === undefined) f.refuse(`${hat}.typed_config`, `filter ${quote(h.name)} has no typed_config (config_discovery is not supported)`);
    else if (isAny(h.typedConfig, RouterCodec)) {
      if (i !== last) f.refuse(hat, 'the router must be the last filter');
      if (h.typedConfig.value.length > 0) f.note(`${hat}.typed_config`, 'router options are Envoy-internal: not used');
    } else if (type === FAULT && h.typedConfig.value.length === 0) {
      // istiod's placeholder: fault injection configured per route, none here.
    } else if (h.disabled || h.isOptional) {
      f.note(hat, `filter ${quote(h.name)} (${type}) is ${h.disabled ? 'disabled' : 'optional'} and not supported: skipped`);
    } else f.refuse(hat, `filter ${quote(h.name)} (${quote(type)}) is not supported on a client listener`);
  });
}

function hcmOf(l: Listener, f: Findings): HttpConnectionManager | undefined {
  refuseUnknown(l.apiListener, f, 'api_listener', API_LISTENER);
  const any = l.apiListener?.apiListener;
  if (any === undefined) {
    f.refuse('api_listener', 'a client listener must be an API listener holding an HttpConnectionManager (gRFC A27)');
    return undefined;
  }
  if (!isAny(any, HttpConnectionManagerCodec)) {
    f.refuse('api_listener.api_listener', `holds ${quote(any.typeUrl)}, not an HttpConnectionManager`);
    return undefined;
  }
  try {
    return unpackAny(any, HttpConnectionManagerCodec);
  } catch (e) {
    f.refuse('api_listener.api_listener', `is not a valid HttpConnectionManager: ${(e as Error).message}`);
    return undefined;
  }
}

export function translateListener(l: Listener): Translation<ListenerSpec> {
  const f = new Findings(`Listener ${quote(l.name)}`);
  refuseUnknown(l, f, '', LISTENER);
  if (l.filterChains.length > 0 || l.defaultFilterChain !== undefined) f.refuse('filter_chains', 'a client API listener has no filter chains (server listeners are translated elsewhere)');
  if (l.listenerFilters.length > 0) f.refuse('listener_filters', 'not supported on a client listener');
  if (l.useOriginalDst === true) f.refuse('use_original_dst', 'not supported on a client listener');
  const hcm = hcmOf(l, f);
  if (hcm === undefined) return f.result(undefined as never);
  const at = 'api_listener.api_listener';
  refuseUnknown(hcm, f, at, HCM);
  checkFilters(hcm.httpFilters, f, at);
  if (hcm.xffNumTrustedHops !== 0) f.refuse(`${at}.xff_num_trusted_hops`, 'must be 0: sidecarless trusts no X-Forwarded-For hops');
  const opts = hcm.commonHttpProtocolOptions;
  refuseUnknown(opts, f, `${at}.common_http_protocol_options`, HCM_HTTP_PROTOCOL_OPTIONS);
  const defaultTimeoutMs = opts?.maxStreamDuration ? durationMs(opts.maxStreamDuration, f, `${at}.common_http_protocol_options.max_stream_duration`) : undefined;
  if (opts?.idleTimeout) f.note(`${at}.common_http_protocol_options.idle_timeout`, 'not used: an API listener has no downstream connection (idle upstream connections follow the service\'s keepAliveTimeout)');
  let routes: ListenerSpec['routes'] | undefined;
  if (hcm.rds !== undefined) {
    refuseUnknown(hcm.rds, f, `${at}.rds`, RDS);
    checkConfigSource(hcm.rds.configSource, f, `${at}.rds.config_source`);
    if (hcm.rds.routeConfigName === '') f.refuse(`${at}.rds.route_config_name`, 'is empty');
    routes = { rds: hcm.rds.routeConfigName };
  } else if (hcm.routeConfig !== undefined) {
    const ctx = defaultTimeoutMs !== undefined && defaultTimeoutMs > 0 ? { defaultTimeoutMs } : {};
    routes = { inline: routeTableOf(hcm.routeConfig, ctx, f, `${at}.route_config.`) };
  } else f.refuse(`${at}.route_specifier`, 'neither rds nor route_config is set (scoped_routes is not supported)');
  return f.result({ name: l.name, routes: routes!, ...(defaultTimeoutMs !== undefined && defaultTimeoutMs > 0 && { defaultTimeoutMs }) });
}
