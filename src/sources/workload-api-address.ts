/**
 * The address of a SPIFFE Workload API endpoint (SPIFFE_Workload_Endpoint.md §4), parsed strictly:
 * `unix:///absolute/path` or `tcp://<IP literal>:<port>`, nothing else. go-spiffe also takes
 * `unix:/path` and reads `unix://name` as a host; both are refused here with the form to write,
 * because a socket path that means something other than it says is an identity going elsewhere.
 * Pure: no I/O.
 */
import { isIP } from 'node:net';

export interface WorkloadApiAddress {
  /** As the user wrote it (for messages and status). */
  readonly uri: string;
  readonly kind: 'unix' | 'tcp';
  /** The socket path (unix) or host:port (tcp). */
  readonly where: string;
  /** The grpc-js target: `unix:///path`, `ipv4:10.0.0.1:8081`, `ipv6:[::1]:8081`. */
  readonly target: string;
}

/** Why an address is refused; the caller wraps it in a ConfigError naming the option or variable. */
export class WorkloadApiAddressError extends Error {
  override readonly name = 'WorkloadApiAddressError';
}

const FORMS = 'write unix:///absolute/path/to/agent.sock or tcp://<IP>:<port>';

export function parseWorkloadApiAddress(uri: string): WorkloadApiAddress {
  const fail = (why: string): never => {
    throw new WorkloadApiAddressError(`"${uri}" is not a Workload API address: ${why}; ${FORMS}`);
  };
  if (typeof uri !== 'string' || uri.trim() === '') fail('it is empty');
  if (uri !== uri.trim()) fail('it has leading or trailing spaces');
  if (/[?#]/.test(uri)) fail('a query or fragment is not allowed');
  if (uri.startsWith('unix:')) return unixAddress(uri, fail);
  if (uri.startsWith('tcp:')) return tcpAddress(uri, fail);
  if (uri.startsWith('/')) fail(`a bare path needs the unix:// scheme (unix://${uri})`);
  return fail('the scheme must be unix or tcp');
}

function unixAddress(uri: string, fail: (why: string) => never): WorkloadApiAddress {
  if (!uri.startsWith('unix://')) fail('a unix address starts with unix:// and an empty authority (unix:///path)');
  const rest = uri.slice('unix://'.length);
  if (rest === '') fail('the socket path is missing (unix:///path)');
  if (!rest.startsWith('/')) fail(`"${rest.split('/')[0]}" sits where the authority is; a unix address has none (three slashes: unix:///path)`);
  let path: string;
  try {
    path = decodeURIComponent(rest);
  } catch {
    return fail('the path has a malformed percent-encoding');
  }
  if (path.length < 2 || path.endsWith('/')) fail('the path must name a socket file');
  if (path.includes('\0')) fail('the path has a NUL byte');
  return { uri, kind: 'unix', where: path, target: `unix://${path}` };
}

function tcpAddress(uri: string, fail: (why: string) => never): WorkloadApiAddress {
  if (!uri.startsWith('tcp://')) fail('a tcp address is tcp://<IP>:<port>');
  const rest = uri.slice('tcp://'.length);
  if (rest.includes('@')) fail('user information is not allowed');
  if (rest.includes('/')) fail('a tcp address has no path');
  const m = /^(\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(rest);
  if (!m) return fail('the host must be an IP literal followed by :port');
  const host = m[2] ?? m[3]!;
  const port = Number(m[4]);
  const family = isIP(host);
  if (family === 0) fail(`"${host}" is not an IP literal (the spec allows no host names, which would need DNS to find the identity)`);
  if (family === 6 && m[2] === undefined) fail('an IPv6 literal goes in brackets: tcp://[::1]:port');
  if (family === 4 && m[2] !== undefined) fail(`an IPv4 literal goes without brackets: tcp://${host}:port`);
  if (host.includes('%')) fail('an IPv6 zone (%interface) is not allowed');
  if (port < 1 || port > 65535) fail(`port ${m[4]} is out of range`);
  const target = family === 4 ? `ipv4:${host}:${port}` : `ipv6:[${host}]:${port}`;
  return { uri, kind: 'tcp', where: family === 4 ? `${host}:${port}` : `[${host}]:${port}`, target };
}
