/**
 * Pure translators from decoded Linkerd proxy-API messages into the mesh's snapshot parts
 * (docs/linkerd-mapping.md). Loaded only by the Linkerd control plane.
 */
export { translateOutbound, routeName, type OutboundContext, type OutboundTranslation, type OutboundBackend } from './outbound.js';
export { DestinationState, snapshotEndpoints, DEFAULT_MAX_ENDPOINTS, type DestinationStatus, type DestinationView } from './destination.js';
export { endpointOf, type LinkerdEndpoint, type EndpointOutcome } from './endpoint.js';
export { translateInbound, type InboundContext, type InboundTranslation } from './inbound.js';
export { Findings, LinkerdUpdateError, formatReasons, unwrap, type Translation, type TranslationReason } from './findings.js';
export { bySpecificity, compareSpecificity, httpSpecificity, grpcSpecificity, type Specificity } from './specificity.js';
