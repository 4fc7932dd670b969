/**
 * A port whose inbound policy a control plane has not delivered yet (its Listener asked for,
 * neither delivered nor known not to exist) denies every request — fail closed — but says so as
 * 503 with `Retry-After: 1` (gRPC: UNAVAILABLE), not 403: the request is not forbidden, the port is
 * not ready, as an Envoy listener without its config is not. A mesh client retries a 503; a
 * request right after the server started listening then lands once the Listener is decided.
 * The control plane's layer (control-plane/xds/inbound-layer.ts) names the denying rule with
 * `pendingPortRule(port)`; the transports map a denial by such a rule with `deniedStatus`.
 */
const PREFIX = 'xds-inbound-pending:';

/** The rule (and section) that holds `port` until its Listener is decided. */
export const pendingPortRule = (port: number): string => `${PREFIX}${port}`;

/** The status of a denial by `rule`: 503 while a port waits for its policy, else 403. */
export function deniedStatus(rule: string): 403 | 503 {
  return rule.startsWith(PREFIX) ? 503 : 403;
}
