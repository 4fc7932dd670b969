/**
 * One DiscoveryResponse checked whole, before anything is applied: every resource is of the
 * response's type, decodes, has a name, and no name comes twice (xds_protocol.rst, "Duplicate
 * Resource Names": clients should NACK). The result is either every resource decoded, or the list
 * of every problem — the caller NACKs with all of them rather than stopping at the first, so one
 * round trip tells the control plane's operator everything that is wrong. Pure.
 */
import { ResourceRejection, WILDCARD, type Decode, type Decoded, type DiscoveryResponse } from './discovery.js';

export interface CheckedResource {
  readonly value: unknown;
  /** The resource as it arrived: an update that re-sends the same bytes changes nothing. */
  readonly bytes: Uint8Array;
}

export interface CheckedResponse {
  /** Every resource, by name, in the response's order. Empty when there are errors. */
  readonly resources: ReadonlyMap<string, CheckedResource>;
  /** Every problem, each naming the resource (its index, and its name when known). */
  readonly errors: readonly string[];
  /**
   * Names the server sent even though the response is rejected (a resource the decoder could name
   * before refusing it, a duplicate): they exist on the server, so they must not be reported as
   * not existing.
   */
  readonly sentNames: ReadonlySet<string>;
}

/** Longest resource name quoted in a message (a hostile server's names can be megabytes). */
const NAME_IN_MESSAGE = 200;
/** Longest single reason kept from a decoder. */
const REASON_IN_MESSAGE = 500;

export function checkResponse(response: DiscoveryResponse, decode: Decode): CheckedResponse {
  const errors: string[] = [];
  const sentNames = new Set<string>();
  const resources = new Map<string, CheckedResource>();
  const firstIndex = new Map<string, number>();
  response.resources.forEach((resource, i) => {
    if (resource.typeUrl !== response.typeUrl) {
      errors.push(`resource ${i}: its type ${quote(resource.typeUrl)} is not the response's type ${quote(response.typeUrl)}`);
      return;
    }
    let decoded: Decoded | undefined;
    try {
      decoded = decode(response.typeUrl, resource);
    } catch (err) {
      if (err instanceof ResourceRejection && validName(err.resourceName)) {
        sentNames.add(err.resourceName);
        errors.push(`resource ${i} (${quote(err.resourceName)}): ${reasonOf(err)}`);
      } else {
        errors.push(`resource ${i}: ${reasonOf(err)}`);
      }
      return;
    }
    const name: unknown = decoded?.name;
    if (typeof name !== 'string' || !validName(name)) {
      errors.push(`resource ${i}: ${typeof name === 'string' && name !== '' ? `the name ${quote(name)} is reserved for wildcard subscriptions` : 'it has no name'}`);
      return;
    }
    sentNames.add(name);
    const first = firstIndex.get(name);
    if (first !== undefined) {
      errors.push(`resource ${i} (${quote(name)}): the same name as resource ${first}; a response may carry a name once`);
      return;
    }
    firstIndex.set(name, i);
    resources.set(name, { value: decoded.value, bytes: resource.value });
  });
  return { resources: errors.length === 0 ? resources : new Map(), errors, sentNames };
}

/** Envoy cuts its NACK messages to 4 KiB (Config::Utility::truncateGrpcStatusMessage); ours stop at 4,096 characters. */
export const MAX_NACK_MESSAGE = 4096;

/** The error_detail message of a NACK: what was rejected and every reason that fits in MAX_NACK_MESSAGE. */
export function nackMessage(short: string, response: DiscoveryResponse, errors: readonly string[]): string {
  let message = `${short} response version ${quote(response.versionInfo)} (nonce ${quote(response.nonce)}) rejected whole, ` +
    `${errors.length} problem${errors.length === 1 ? '' : 's'}: `;
  let shown = 0;
  for (const error of errors) {
    const part = (shown === 0 ? '' : '; ') + error;
    const after = errors.length - shown - 1;
    const reserve = after > 0 ? `; … and ${after} more`.length : 0;
    if (message.length + part.length + reserve > MAX_NACK_MESSAGE) break;
    message += part;
    shown++;
  }
  if (shown < errors.length) message += `${shown === 0 ? '' : '; '}… and ${errors.length - shown} more`;
  return message;
}

function validName(name: string): boolean {
  return name !== '' && name !== WILDCARD;
}

/** A name or type URL from the peer, quoted and escaped (JSON), cut to NAME_IN_MESSAGE characters. */
export function quote(s: string): string {
  return JSON.stringify(s.length > NAME_IN_MESSAGE ? `${s.slice(0, NAME_IN_MESSAGE)}…` : s);
}

/** What a decoder threw, as text, never throwing itself (a hostile value's toString may). */
function reasonOf(err: unknown): string {
  let text: string;
  try {
    text = err instanceof Error ? err.message : String(err);
  } catch {
    text = 'the decoder threw a value that cannot be shown';
  }
  if (text === '') text = 'rejected by the decoder (no reason given)';
  return text.length > REASON_IN_MESSAGE ? `${text.slice(0, REASON_IN_MESSAGE)}…` : text;
}
