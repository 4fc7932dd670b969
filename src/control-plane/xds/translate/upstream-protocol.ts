/**
 * A Cluster's typed_extension_protocol_options → the protocol its endpoints speak. istiod signals
 * an HTTP/2 upstream (grpc and http2 ports) with exactly one entry,
 * "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", holding explicit_http_config
 * { http2_protocol_options {} }: that shape means 'http2' (a gRPC service's calls are HTTP/2
 * requests; the Cluster says nothing about gRPC). Any other entry, type, protocol choice (auto,
 * downstream, HTTP/1, HTTP/3) or HTTP/2 setting is a reason (envoy-fields.ts says which and why):
 * a service declared HTTP/2 is never silently spoken to in HTTP/1.1, nor the other way round.
 * No entry: the base's protocol. Pure.
 */
import type { Any } from '../../../proto/google/protobuf/any.js';
import { isAny, typeNameOf, unpackAny } from '../../../proto/any-pack.js';
import { type HttpProtocolOptions, HttpProtocolOptionsCodec } from '../../../proto/envoy/extensions/upstreams/http/v3/http_protocol_options.js';
import type { ServiceProtocol } from '../../../outbound/settings.js';
import { type Findings, quote } from './result.js';
import { EXPLICIT_HTTP_CONFIG, UPSTREAM_HTTP2_PROTOCOL_OPTIONS, UPSTREAM_HTTP_PROTOCOL_OPTIONS } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

/** The extension name (and type) istiod keys the upstream HTTP options by. */
export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function optionsOf(any: Any, f: Findings, at: string): HttpProtocolOptions | undefined {
  if (!isAny(any, HttpProtocolOptionsCodec)) {
    f.refuse(at, `must hold an ${HTTP_PROTOCOL_OPTIONS_KEY}, holds ${quote(typeNameOf(any.typeUrl))}`);
    return undefined;
  }
  try {
    return unpackAny(any, HttpProtocolOptionsCodec);
  } catch (e) {
    f.refuse(at, `is not a valid HttpProtocolOptions: ${(e as Error).message}`);
    return undefined;
  }
}

/** The protocol the Cluster's options say, or `base` when it carries none (reasons into `f`). */
export function upstreamProtocol(map: ReadonlyMap<string, Any>, base: ServiceProtocol, f: Findings): ServiceProtocol {
  let protocol = base;
  for (const [key, any] of map) {
    const at = `typed_extension_protocol_options[${quote(key)}]`;
    if (key !== HTTP_PROTOCOL_OPTIONS_KEY) {
      f.refuse(at, `protocol options for ${quote(key)} are not supported (only ${HTTP_PROTOCOL_OPTIONS_KEY})`);
      continue;
    }
    const o = optionsOf(any, f, at);
    if (o === undefined) continue;
    const before = f.reasons.length;
    refuseUnknown(o, f, at, UPSTREAM_HTTP_PROTOCOL_OPTIONS);
    const explicit = o.explicitHttpConfig;
    refuseUnknown(explicit, f, `${at}.explicit_http_config`, EXPLICIT_HTTP_CONFIG);
    refuseUnknown(explicit?.http2ProtocolOptions, f, `${at}.explicit_http_config.http2_protocol_options`, UPSTREAM_HTTP2_PROTOCOL_OPTIONS);
    if (explicit?.http2ProtocolOptions === undefined) {
      // Unknown-field reasons already name an HTTP/1, HTTP/3, auto or downstream choice; say what is missing otherwise.
      if (f.reasons.length === before) f.refuse(at, 'says no protocol: only explicit_http_config.http2_protocol_options (HTTP/2) is supported');
      continue;
    }
    protocol = base === 'grpc' ? 'grpc' : 'http2';
  }
  return protocol;
}
