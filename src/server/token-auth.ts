/**
 * Who opens an ADS stream on the TLS port: the bearer token, verified as the CA verifies it
 * (ca-service.ts tokenAuthenticator: the control plane's own tokens and any external issuers), and
 * the node must say the same namespace and service account (istiod's checkConnectionIdentity): a
 * token for one workload cannot open a stream that claims to be another and register its
 * addresses. A bad token is refused UNAUTHENTICATED with istiod's words (the reason is logged
 * here, never sent); a node that contradicts its token gets PERMISSION_DENIED saying so (the
 * caller already knows both sides). The namespace compared is the one the node says by any means
 * (NAMESPACE metadata, else its cluster `<service>.<namespace>`): leaving NAMESPACE out does not
 * skip the check.
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
    // The namespace the registry and the inbound Listener read from this node (workload-node.ts):
    // NAMESPACE, else the cluster's `<service>.<namespace>` — compared even when NAMESPACE is absent.
    const cluster = node?.cluster ?? '';
    const ns = fields?.get('NAMESPACE')?.stringValue ?? (cluster.indexOf('.') > 0 ? cluster.slice(cluster.indexOf('.') + 1) : undefined);
    const sa = fields?.get('SERVICE_ACCOUNT')?.stringValue;
    if ((ns !== undefined && ns !== who.namespace) || (sa !== undefined && sa !== who.serviceAccount)) {
      return { code: PERMISSION_DENIED, details: `the node says namespace ${JSON.stringify(ns ?? '')} and service account ${JSON.stringify(sa ?? '')}, but the token is for ${who.spiffeId}: use this workload's own token` };
    }
    return who.spiffeId;
  };
}
