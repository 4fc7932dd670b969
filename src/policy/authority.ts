/**
 * The Host header and the authority of a request target (RFC 9110 §7.2, RFC 3986 §3.2): one
 * grammar, checked before a policy judges a host, so that the host the policy judges is the host
 * the app reads. Pure.
 *
 * | accepted                                   | refused (→ 400)                                  |
 * | ------------------------------------------ | ------------------------------------------------ |
 * | `example.com`, `a-b.c_d~e`, `10.0.0.1`      | userinfo `a@b`, a path `a/b`, `a?b`, `a#b`, `a\b` |
 * | `example.com:8443`, `example.com:` (RFC)    | percent-encoding `%61.example`, sub-delims `a,b` |
 * | `[::1]`, `[::1]:8443`                       | a second colon `a:1:2`, a port `a:x`, `a:123456`  |
 * | `example.com.` (one trailing dot)          | empty labels `a..b`, `.a`, `a..`                 |
 * | '' (RFC 9112 §3.2: no authority)            | `[v1.x]` (IPvFuture), `[not-ipv6]`, spaces        |
 * |                                            | a zone id `[fe80::1%25eth0]`                      |
 *
 * reg-name is narrower than RFC 3986 (no percent-encoding, no sub-delims): no DNS name has them,
 * and the frameworks' `hostname` parsers disagree about them.
 */
import { parseIpv6 } from './cidr.js';

/** `ALPHA / DIGIT / "-" / "." / "_" / "~"`. */
function isRegNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

function describe(c: string): string {
  switch (c) {
    case '@':
      return 'userinfo ("@")';
    case '/':
      return 'a path ("/")';
    case '?':
      return 'a query ("?")';
    case '#':
      return 'a fragment ("#")';
    case '\\':
      return 'a backslash';
    case '%':
      return 'percent-encoding';
    case ':':
      return 'a second ":"';
    default:
      return c.charCodeAt(0) < 0x21 || c.charCodeAt(0) > 0x7e ? 'a control, space or non-ASCII character' : `"${c}"`;
  }
}

function checkPort(port: string, required: boolean): string | undefined {
  if (port.length === 0) return required ? 'the port is missing' : undefined;
  if (port.length > 5) return `port "${port}" is out of range`;
  for (let i = 0; i < port.length; i++) {
    const c = port.charCodeAt(i);
    if (c < 48 || c > 57) return `port "${port}" is not a number`;
  }
  return Number(port) > 65535 ? `port "${port}" is out of range` : undefined;
}

/**
 * Checks a Host value (or an authority): returns why it is refused, or undefined when it is well
 * formed. `portRequired`: the authority-form of CONNECT (`host:port`).
 */
export function hostProblem(value: string, portRequired = false): string | undefined {
  if (value.length === 0) return portRequired ? 'the authority is empty' : undefined;
  let rest: string;
  if (value.charCodeAt(0) === 91 /* [ */) {
    const end = value.indexOf(']');
    if (end < 0) return 'an IPv6 literal without "]"';
    const inner = value.slice(1, end);
    if (/^v/i.test(inner)) return 'an IPvFuture literal';
    // RFC 3986's IP-literal has no zone id (`[fe80::1%25eth0]`, RFC 6874, is for local URIs, never a
    // Host), and parseIpv6 ignores everything after a `%`: `/`, `@`, `#` would slip through there.
    if (inner.includes('%')) return 'a zone id ("%") in the IPv6 literal';
    if (parseIpv6(inner) === null) return `"[${inner}]" is not an IPv6 address`;
    rest = value.slice(end + 1);
    if (rest.length > 0 && rest.charCodeAt(0) !== 58) return `${describe(rest[0]!)} after the IPv6 literal`;
  } else {
    let i = 0;
    for (; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 58 /* : */) break;
      if (!isRegNameChar(c)) return `the host contains ${describe(value[i]!)}`;
    }
    if (i === 0) return 'the host name is empty';
    if (i > 253) return 'the host name is longer than 253 characters';
    // One trailing dot is a fully qualified name; any other empty label is no DNS name, and hosts
    // would compare differently depending on how many dots are stripped.
    const name = value.slice(0, i);
    if (name.charCodeAt(0) === 46 || name.includes('..')) return 'an empty label (".." or a leading ".")';
    rest = value.slice(i);
  }
  if (rest.length === 0) return portRequired ? 'the port is missing' : undefined;
  const port = rest.slice(1);
  const colon = port.indexOf(':');
  if (colon >= 0) return 'a second ":"';
  for (let i = 0; i < port.length; i++) {
    const c = port[i]!;
    if (c === '@' || c === '/' || c === '?' || c === '#' || c === '\\' || c === '%') return `the port contains ${describe(c)}`;
  }
  return checkPort(port, portRequired);
}

/** The host part, lower-cased, without the port and a trailing dot: how hosts are compared. */
export function hostKey(value: string): string {
  let h = value;
  if (h.charCodeAt(0) === 91) {
    const end = h.indexOf(']');
    if (end > 0) h = h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  if (h.length > 1 && h.charCodeAt(h.length - 1) === 46) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** Whether two well-formed authorities name the same host and port (case-insensitive host; `a:` is `a`). */
export function sameAuthority(a: string, b: string): boolean {
  if (a.toLowerCase() === b.toLowerCase()) return true;
  const port = (v: string) => {
    const at = v.charCodeAt(0) === 91 ? v.indexOf(']') + 1 : 0;
    const colon = v.indexOf(':', at);
    return colon < 0 ? '' : v.slice(colon + 1);
  };
  return hostKey(a) === hostKey(b) && port(a) === port(b);
}
