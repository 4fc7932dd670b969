/**
 * Who opens an ADS stream on the TLS port: the bearer token, verified as the CA verifies it
 * (ca-service.ts tokenAuthenticator: the control plane's own tokens and any external issuers), and
 * the node must say the same namespace and service account (istiod's checkConnectionIdentity): a
 * token for one workload cannot open a stream that claims to be another and register its
 * addresses. A bad token is refused UNAUTHENTICATED with istiod's words (the reason is logged
 * here, never sent); a node that contradicts its token gets PERMISSION_DENIED saying so (the
 * caller already knows both sides).
 */
import type { Metadata } from '@grpc/grpc-js';
import { type Logger } from '../logger.js';
import type { Node } from '../proto/envoy/config/core/v3/base.js';
import { AUTHENTICATE_FAILURE, type TokenIdentity } from './ca/ca-service.js';
import type { AdsRefusal } from './xds/ads-service.js';

const UNAUTHENTICATED = 16;
const PERMISSION_DENIED = 7;

export type TokenCheck = (md: Metadata) => TokenIdentity | { readonly refused: string };

export function adsAuthenticator(check: TokenCheck, logger: Logger): (md: Metadata, node: Node | undefined) => string | AdsRefusal {
  return (md, node) => {
    const who = check(md);
    if ('refused' in who) {
      logger.warn(`ADS stream refused (node ${JSON.stringify(node?.id?.slice(0, 200) ?? '')}): ${who.refused}`);
      return { code: UNAUTHENTICATED, details: AUTHENTICATE_FAILURE };
    }
    const fields = node?.metadata?.fields;
    const ns = fields?.get('NAMESPACE')?.stringValue;
    const sa = fields?.get('SERVICE_ACCOUNT')?.stringValue;
    if ((ns !== undefined && ns !== who.namespace) || (sa !== undefined && sa !== who.serviceAccount)) {
      return { code: PERMISSION_DENIED, details: `the node says namespace ${JSON.stringify(ns ?? '')} and service account ${JSON.stringify(sa ?? '')}, but the token is for ${who.spiffeId}: use this workload's own token` };
    }
    return who.spiffeId;
  };
}
