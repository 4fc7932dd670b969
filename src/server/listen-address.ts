/**
 * The `--listen`, `--plaintext-listen` and `--admin-listen` values of `sidecarless control-plane`:
 * `host:port`, `[v6]:port`, or a bare port (loopback: a port alone never opens the host to the
 * network — widening is always written out, as istiod's 15010 is meant to stay in the pod).
 */
import { isLoopbackHost } from '../admin/server.js';
import { ConfigError } from '../errors.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  readonly loopback: boolean;
}

export const DEFAULT_LISTEN = '127.0.0.1:15012';
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:15014';

export function parseListen(flag: string, value: string): ListenAddress {
  const v = value.trim();
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${flag} ${JSON.stringify(value)} is not host:port or a port (e.g. 127.0.0.1:15012, [::1]:15012, 15012; 0 picks a free port)`);
  const host = (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, '');
  return { host, port, loopback: isLoopbackHost(host) };
}

/** `host:port` as clients write it. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
