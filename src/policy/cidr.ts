/**
 * IP addresses and CIDR blocks as numbers, so that matching a source address is a few integer
 * comparisons. IPv4 addresses are unsigned 32-bit numbers; IPv6 addresses are bigints. An
 * IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack Node socket reports) is treated as
 * the IPv4 address it carries, both in requests and in rules.
 */

/** A parsed address: `v4` holds an unsigned 32-bit number, `v6` a 128-bit bigint. */
export type ParsedIp = { readonly v: 4; readonly n: number } | { readonly v: 6; readonly n: bigint };

/** An inclusive address range, the compiled form of a CIDR block. */
export interface IpRange {
  readonly v: 4 | 6;
  readonly lo: number | bigint;
  readonly hi: number | bigint;
}

const V6_MAX = (1n << 128n) - 1n;
const MAPPED_PREFIX = 0xffffn << 32n;

/** Parses dotted-quad IPv4 without allocating. Returns -1 when `s` is not exactly an IPv4 address. */
export function parseIpv4(s: string, start = 0, end = s.length): number {
  let n = 0;
  let parts = 0;
  let octet = -1;
  let digits = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : 46; /* '.' terminates the last octet */
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // leading zero: ambiguous (octal), refuse
      octet = (octet < 0 ? 0 : octet) * 10 + (c - 48);
      digits++;
      if (octet > 255) return -1;
    } else if (c === 46) {
      if (digits === 0) return -1;
      n = n * 256 + octet;
      parts++;
      octet = -1;
      digits = 0;
      if (parts > 4) return -1;
    } else {
      return -1;
    }
  }
  return parts === 4 ? n : -1;
}

function hexGroup(s: string): number {
  if (s.length === 0 || s.length > 4) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    n = n * 16 + d;
  }
  return n;
}

/** Parses an IPv6 address (with `::`, an embedded IPv4 tail, and an optional `%zone`). */
export function parseIpv6(input: string): bigint | null {
  let s = input;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.length < 2) return null;
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return null;
  const groupsOf = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (i === pieces.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (v4 < 0) return null;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        const g = hexGroup(p);
        if (g < 0) return null;
        out.push(g);
      }
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = groupsOf(s.slice(0, dbl));
    const tail = groupsOf(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = groupsOf(s);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(g);
  return n;
}

/**
 * Parses an address as a request's source IP. IPv4-mapped IPv6 becomes IPv4. Returns null for
 * anything that is not an address (such a source never falls inside any block).
 */
export function parseIp(s: string): ParsedIp | null {
  if (s.indexOf(':') < 0) {
    const v4 = parseIpv4(s);
    return v4 < 0 ? null : { v: 4, n: v4 };
  }
  const v6 = parseIpv6(s);
  if (v6 === null) return null;
  if (v6 >> 32n === 0xffffn) return { v: 4, n: Number(v6 & 0xffffffffn) };
  return { v: 6, n: v6 };
}

/** Parses `a.b.c.d/len`, `x::y/len`, or a bare address (a /32 or /128). Returns an error message on failure. */
export function parseCidr(text: string): IpRange | string {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? undefined : text.slice(slash + 1);
  const isV6 = addr.includes(':');
  if (isV6 && addr.includes('%')) return `"${text}" is not a CIDR block: zone ids are not allowed`;
  const max = isV6 ? 128 : 32;
  let len = max;
  if (lenText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > max) {
      return `"${text}" is not a CIDR block: prefix length must be 0..${max}`;
    }
    len = Number(lenText);
  }
  if (!isV6) {
    const n = parseIpv4(addr);
    if (n < 0) return `"${text}" is not an IPv4 address or CIDR block`;
    const size = 2 ** (32 - len);
    const lo = Math.floor(n / size) * size;
    return { v: 4, lo, hi: lo + size - 1 };
  }
  const n = parseIpv6(addr);
  if (n === null) return `"${text}" is not an IPv6 address or CIDR block`;
  const hostBits = BigInt(128 - len);
  const mask = (V6_MAX >> hostBits) << hostBits;
  const lo = n & mask;
  const hi = lo | (V6_MAX ^ mask);
  // An IPv4-mapped block (::ffff:0:0/96 or narrower) means the IPv4 addresses it maps.
  if (len >= 96 && lo >> 32n === 0xffffn && (lo & ~0xffffffffn) === MAPPED_PREFIX) {
    return { v: 4, lo: Number(lo & 0xffffffffn), hi: Number(hi & 0xffffffffn) };
  }
  return { v: 6, lo, hi };
}

/** Whether `ip` falls in any of `ranges` (no allocation). */
export function inRanges(ranges: readonly IpRange[], ip: ParsedIp | null): boolean {
  if (ip === null) return false;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    if (r.v === ip.v && ip.n >= r.lo && ip.n <= r.hi) return true;
  }
  return false;
}

/** Default `clusterNetworks`: RFC 1918, loopback (v4 and v6), IPv6 unique-local (ULA). */
export const DEFAULT_CLUSTER_NETWORKS: readonly string[] = Object.freeze([
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '127.0.0.0/8',
  '::1/128',
  'fc00::/7',
]);
