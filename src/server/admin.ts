/**
 * The control plane's admin endpoint (`--admin-listen`, default 127.0.0.1:15014): plain HTTP,
 * unauthenticated like the mesh's own admin endpoint, so loopback unless widened on purpose.
 *   /status  what `sidecarless control-plane status` prints, as JSON (no key material, no tokens)
 *   /live    200 while the process serves
 * A request whose Host is a name other than localhost (or the --admin-listen host) gets 421: a web
 * page whose name is rebound to 127.0.0.1 (DNS rebinding) could otherwise read /status from the
 * operator's browser. An IP address, or no Host at all, is answered.
 */
import { type Server, createServer } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { type ListenAddress, formatAddress } from './listen-address.js';
import { ControlPlaneListenError } from './control-plane-errors.js';

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startStatusAdmin(at: ListenAddress, status: () => unknown): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (!hostAllowed(req.headers.host, at.host)) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('misdirected: address this endpoint by IP address or localhost\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET\n');
      return;
    }
    if (path === '/live') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path !== '/status') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /status, /live\n');
      return;
    }
    let body: string;
    try {
      body = JSON.stringify(status(), null, 1) + '\n';
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`status failed: ${(e as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new ControlPlaneListenError(at, e)));
    server.listen(at.port, at.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${formatAddress(at.host, port)}`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** Host (without port) is an IP address, localhost, or the name the endpoint was told to listen on. */
export function hostAllowed(header: string | undefined, listenHost: string): boolean {
  if (header === undefined) return true;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*))(?::\d{1,5})?$/.exec(header.trim());
  if (!m) return false;
  const host = (m[1] ?? m[2] ?? '').toLowerCase().replace(/\.$/, '');
  return isIP(host) !== 0 || host === 'localhost' || host === listenHost.toLowerCase();
}
