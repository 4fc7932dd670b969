/**
 * When linkerd2-proxy renews its certificate (identity-client certify.rs `refresh_in`, defaults in
 * app env.rs): at 70 % of the time left until valid_until, never sooner than 10 s nor later than
 * 24 h from now; a certificate already past valid_until is retried in 10 s. Pure.
 */
export const LINKERD_MIN_REFRESH_MS = 10_000;
export const LINKERD_MAX_REFRESH_MS = 24 * 3_600_000;

export function linkerdRefreshIn(validUntil: number, now: number): number {
  const left = validUntil - now;
  if (!(left > 0)) return LINKERD_MIN_REFRESH_MS;
  return Math.min(LINKERD_MAX_REFRESH_MS, Math.max(LINKERD_MIN_REFRESH_MS, Math.ceil((left * 7) / 10))); // whole ms, as timers take them
}

/** The instant of the renewal, in the shape RenewingSourceOptions.renewAt takes. */
export function linkerdRefreshAt(svid: { readonly notAfter: number }, now: number): number {
  return now + linkerdRefreshIn(svid.notAfter, now);
}
