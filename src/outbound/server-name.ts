import { isIP } from 'node:net';
import { validateDnsName } from '../identity/dns-id.js';

/**
 * Why `name` cannot be sent as a TLS server name (SNI), or undefined: it must be a lower-case DNS
 * name (RFC 1123, as a DNS-like identity), never an IP address (RFC 6066 §3). Pure.
 */
export function serverNameProblem(name: string): string | undefined {
  if (typeof name === 'string' && isIP(name) !== 0) return `"${name}" is an IP address: a TLS server name (SNI) is a DNS name`;
  try {
    validateDnsName(name, 'TLS server name');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
