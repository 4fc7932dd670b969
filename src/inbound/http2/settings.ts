/**
 * The HTTP/2 settings and limits of every h2 server the mesh builds or hands options for
 * (`mesh.createServer(app, { http2: true })`, `mesh.serverTlsOptions({ http2: true })`):
 *
 * | option                          | default     | why                                                  |
 * | ------------------------------- | ----------- | ---------------------------------------------------- |
 * | settings.maxConcurrentStreams   | 100         | Node's default is 2^32-1; 100 is RFC 9113's floor advice and Envoy's/Go's order |
 * | settings.maxHeaderListSize      | 16384       | the same 16 KiB node:http allows an HTTP/1.1 head    |
 * | maxHeaderListPairs              | 128         | Node's default, stated                               |
 * | maxSessionMemory                | 10 (MB)     | Node's default, stated: past it new streams are refused (ENHANCE_YOUR_CALM) |
 * | allowHTTP1                      | true        | one port serves h2 and HTTP/1.1 (ALPN h2, http/1.1)  |
 * | settings.enableConnectProtocol  | false       | extended CONNECT is refused (the gate cannot judge a tunnel) |
 *
 * Rapid resets: reset-guard.ts. Idle sessions (no open stream for 5 minutes): idle.ts.
 */
import { type SecureServerOptions, type Settings } from 'node:http2';

export const H2_SETTINGS: Readonly<Settings> = Object.freeze({
  maxConcurrentStreams: 100,
  maxHeaderListSize: 16_384,
  enableConnectProtocol: false,
});

/** Options node:http2 reads beside the TLS ones. */
export const H2_SERVER_OPTIONS: Readonly<Pick<SecureServerOptions, 'allowHTTP1' | 'maxHeaderListPairs' | 'maxSessionMemory'>> = Object.freeze({
  allowHTTP1: true,
  maxHeaderListPairs: 128,
  maxSessionMemory: 10,
});

/** The h2 part of a server's options (a fresh object: node:http2 may keep it). */
export function http2Options(): Pick<SecureServerOptions, 'allowHTTP1' | 'maxHeaderListPairs' | 'maxSessionMemory' | 'settings'> {
  return { ...H2_SERVER_OPTIONS, settings: { ...H2_SETTINGS } };
}
