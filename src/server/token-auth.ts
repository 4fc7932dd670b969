/**
 * Who is calling the TLS port: the bearer token (`authorization: Bearer <jwt>`, the header istiod
 * reads) verified by the CA's token rules (ca/tokens.ts), as a SPIFFE ID of the trust domain. The
 * CA issues for that identity only; the ADS stream additionally requires its node to say the same
 * namespace and service account (istiod's checkConnectionIdentity: a token for one workload cannot
 * open a stream that claims to be another and register its addresses).
 */
import * as grpc from '@grpc/grpc-js';
import { type Clock } from '../clock.js';
import type { Node } from '../proto/envoy/config/core/v3/base.js';
import { type CaState } from './ca/state.js';
import { verifyToken } from './ca/tokens.js';

export interface Refusal {
  readonly code: grpc.status;
  readonly details: string;
}

export class CallRefused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.details);
  }
}

export interface TokenAuthOptions {
  readonly state: CaState;
  readonly trustDomain: string;
  readonly clock: Clock;
}

export function bearerOf(md: grpc.Metadata): string | undefined {
  const values = md.get('authorization');
  if (values.length !== 1 || typeof values[0] !== 'string') return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,16384})$/.exec(values[0]);
  return m?.[1];
}

export function tokenAuthenticator(o: TokenAuthOptions) {
  const identityOf = (md: grpc.Metadata): { identity: string; namespace: string; serviceAccount: string } => {
    const token = bearerOf(md);
    if (token === undefined) throw new CallRefused({ code: grpc.status.UNAUTHENTICATED, details: 'request authenticate failure: no "authorization: Bearer <token>" metadata' });
    const r = verifyToken(o.state, token, { clock: o.clock });
    if ('refused' in r) throw new CallRefused({ code: grpc.status.UNAUTHENTICATED, details: `request authenticate failure: ${r.refused}` });
    return { identity: `spiffe://${o.trustDomain}/ns/${r.namespace}/sa/${r.serviceAccount}`, namespace: r.namespace, serviceAccount: r.serviceAccount };
  };
  return {
    ca: (md: grpc.Metadata): string => identityOf(md).identity,
    ads: (md: grpc.Metadata, node: Node | undefined): string => {
      const who = identityOf(md);
      const fields = node?.metadata?.fields;
      const ns = fields?.get('NAMESPACE')?.stringValue;
      const sa = fields?.get('SERVICE_ACCOUNT')?.stringValue;
      if ((ns !== undefined && ns !== who.namespace) || (sa !== undefined && sa !== who.serviceAccount)) {
        throw new CallRefused({ code: grpc.status.PERMISSION_DENIED, details: `the node says namespace ${JSON.stringify(ns)} service account ${JSON.stringify(sa)}, the token is for ${who.identity}` });
      }
      return who.identity;
    },
  };
}
