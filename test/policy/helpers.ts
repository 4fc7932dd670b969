import { parseDnsIdentity } from '../../src/identity/dns-id.js';
import { peerIdentityOf } from '../../src/identity/name.js';
import assert from 'node:assert/strict';
import { PolicyError } from '../../src/errors.js';
import type { PolicyRequest } from '../../src/policy/index.js';

/** Builds a PolicyRequest; `from` is a SPIFFE ID or null (plaintext). */
export function req(o: {
  from?: string | null;
  ip?: string;
  method?: string;
  path?: string;
  host?: string;
  port?: number;
  sni?: string;
  headers?: Record<string, string>;
} = {}): PolicyRequest {
  const from = o.from === undefined ? 'spiffe://cluster.local/ns/default/sa/web' : o.from;
  let peer: PolicyRequest['peer'] = null;
  if (from !== null) {
    if (!from.startsWith('spiffe://')) peer = peerIdentityOf(parseDnsIdentity(from));
    else {
      const m = /^spiffe:\/\/([^/]+)(\/.*)$/.exec(from)!;
      const k = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(m[2]!);
      const base = { id: from, kind: 'spiffe' as const, spiffeId: from, trustDomain: m[1]! };
      peer = k ? { ...base, namespace: k[1]!, serviceAccount: k[2]! } : base;
    }
  }
  const headers = o.headers ?? {};
  const r: PolicyRequest = {
    peer,
    sourceIp: o.ip ?? '10.1.2.3',
    method: o.method ?? 'GET',
    path: o.path ?? '/',
    host: o.host ?? 'svc.example',
    port: o.port ?? 8443,
    header: (n) => headers[n],
  };
  return o.sni !== undefined ? { ...r, sni: o.sni } : r;
}

export const OPTS = { trustDomain: 'cluster.local', namespace: 'default' } as const;

/** The issues of the PolicyError that `fn` throws (fails the test when it throws nothing else). */
export function issuesOf(fn: () => unknown): ReadonlyArray<{ path: string; message: string }> {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PolicyError, String(e));
    return e.issues;
  }
  return assert.fail('expected PolicyError');
}
