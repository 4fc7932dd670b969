/**
 * Linkerd's address messages (net.proto) to and from text: an IPv4 address is its four octets
 * read big-endian as one fixed32, an IPv6 address its sixteen as two big-endian fixed64 halves.
 */
import { ProtoError } from '../wire.js';
import type { IPAddress, TcpAddress } from './net.js';

/** The address as text (`10.0.0.1`, `fd00::1` in RFC 5952 form); a message with neither member is a ProtoError. */
export function ipToString(ip: IPAddress | undefined): string {
  const o = ip?.ip;
  if (o?.kind === 'ipv4') {
    const v = o.ipv4 >>> 0;
    return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join('.');
  }
  if (o?.kind === 'ipv6') {
    const hex = ((o.ipv6.first << 64n) | o.ipv6.last).toString(16).padStart(32, '0');
    const groups = hex.match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, ''));
    return compressV6(groups);
  }
  throw new ProtoError('io.linkerd.proxy.net.IPAddress: neither ipv4 nor ipv6 is set');
}

function compressV6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** `ip:port`, IPv6 in brackets (`[fd00::1]:8080`); a missing address or a port beyond 65535 is a ProtoError. */
export function tcpAddressToString(a: TcpAddress): string {
  if (a.port > 65535) throw new ProtoError(`io.linkerd.proxy.net.TcpAddress: port ${a.port} is beyond 65535`);
  const ip = ipToString(a.ip);
  return ip.includes(':') ? `[${ip}]:${a.port}` : `${ip}:${a.port}`;
}

/** The message for an address in text (a dotted IPv4 or any IPv6 form Node's URL parser takes). */
export function ipFromString(text: string): IPAddress {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const o = v4.slice(1).map(Number);
    if (o.some((x) => x > 255)) throw new ProtoError(`${text} is not an IPv4 address`);
    return { ip: { kind: 'ipv4', ipv4: ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]! } };
  }
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    throw new ProtoError(`${text} is not an IP address`);
  }
  const [head = '', tail = ''] = host.split('::');
  const h = head ? head.split(':') : [];
  const t = host.includes('::') ? (tail ? tail.split(':') : []) : [];
  const all = host.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const v = BigInt(`0x${all.map((g) => g.padStart(4, '0')).join('')}`);
  return { ip: { kind: 'ipv6', ipv6: { first: v >> 64n, last: v & 0xffffffffffffffffn } } };
}
