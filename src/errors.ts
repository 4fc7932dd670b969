/**
 * Errors with a stable `code`. Messages say what went wrong and what to do about it; callers
 * branch on `code`, never on the message.
 */
export class SidecarlessError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Invalid options or config. `issues` lists every problem with its dotted path. */
export class ConfigError extends SidecarlessError {
  readonly issues: ReadonlyArray<{ path: string; message: string }>;
  constructor(message: string, issues: ReadonlyArray<{ path: string; message: string }> = []) {
    super('ERR_SIDECARLESS_CONFIG_INVALID', message);
    this.issues = issues;
  }
}

/** A SPIFFE ID that does not follow the SPIFFE-ID specification. */
export class SpiffeIdError extends SidecarlessError {
  constructor(message: string) {
    super('ERR_SIDECARLESS_SPIFFE_ID_INVALID', message);
  }
}

/** An X.509-SVID (or its chain) that fails the X.509-SVID specification or does not verify. */
export class SvidError extends SidecarlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_SVID_INVALID', message, options);
  }
}

/** A DNS-like identity (Linkerd's `<sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<trust-domain>`) that is not a lower-case RFC 1123 name. */
export class DnsIdentityError extends SidecarlessError {
  constructor(message: string) {
    super('ERR_SIDECARLESS_DNS_IDENTITY_INVALID', message);
  }
}

/** No valid SVID is available: the mesh refuses to serve or call until one is. */
export class IdentityUnavailableError extends SidecarlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_IDENTITY_UNAVAILABLE', message, options);
  }
}

/** The peer presented an identity other than the one that was expected. */
export class PeerIdentityError extends SidecarlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_PEER_IDENTITY', message, options);
  }
}

/** An outbound request to a host that is not a mesh service while `outbound.egress` is 'deny'. */
export class EgressDeniedError extends SidecarlessError {
  constructor(host: string) {
    super(
      'ERR_SIDECARLESS_EGRESS_DENIED',
      `egress to "${host}" is denied: it is not a mesh service and outbound.egress is 'deny'. ` +
        `Add it to outbound.services, or set outbound.egress to 'allow'.`,
    );
  }
}

/**
 * A policy document that cannot be loaded. The message names the offending path, and for text the
 * line and column (`file:line:col` when it came from a file); so does each issue.
 */
export class PolicyError extends SidecarlessError {
  readonly issues: ReadonlyArray<{ path: string; message: string; line?: number; column?: number; file?: string }>;
  constructor(message: string, issues: ReadonlyArray<{ path: string; message: string; line?: number; column?: number; file?: string }> = []) {
    super('ERR_SIDECARLESS_POLICY_INVALID', message);
    this.issues = issues;
  }
}

/** The policy file given as `inbound.policy` cannot be read (missing, not readable, a directory). */
export class PolicyFileError extends SidecarlessError {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_SIDECARLESS_POLICY_FILE', message, options);
  }
}

/** No endpoint can take the request (none configured, or all failed). */
export class NoEndpointError extends SidecarlessError {
  constructor(service: string, detail = 'it has no endpoints') {
    super('ERR_SIDECARLESS_NO_ENDPOINT', `cannot route to mesh service "${service}": ${detail}.`);
  }
}

/** A file or directory the CLI needs cannot be read or written. The message names the path and the OS reason. */
export class FileError extends SidecarlessError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_FILE', message, options);
    this.path = path;
  }
}

/** CA files (ca.pem, ca_key.pem) that cannot sign: no certificate, not a CA, a key for another certificate, expired. */
export class CaError extends SidecarlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_CA_INVALID', message, options);
  }
}

/**
 * A Linkerd control-plane stream (Destination.Get, OutboundPolicies.Watch,
 * InboundServerPolicies.WatchPort) ended or could not be opened: the server's status
 * (`grpcStatus`, e.g. UNAVAILABLE), a response that does not decode, no workload certificate yet.
 * The stream reconnects with backoff; what it last delivered stays in force (the caller decides).
 */
export class LinkerdStreamError extends SidecarlessError {
  constructor(
    message: string,
    /** 'destination' | 'outbound' | 'inbound'. */
    readonly stream: string,
    /** The grpc status name (UNAVAILABLE, PERMISSION_DENIED, …), or undefined when no call was made. */
    readonly grpcStatus: string | undefined,
    options?: { cause?: unknown },
  ) {
    super('ERR_SIDECARLESS_LINKERD_STREAM', message, options);
  }
}

/** `sidecarless stat` could not read an admin endpoint's /metrics (unreachable, not 200, not Prometheus text). */
export class ScrapeError extends SidecarlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_SCRAPE_FAILED', message, options);
  }
}

/**
 * A JWT-SVID that is refused: not a compact JWS, an algorithm outside the JWT-SVID list, an unknown
 * key, a bad signature, the wrong audience, expired. `reason` says which check failed (stable, for
 * branching and metrics); the message says it for a person.
 */
export class JwtSvidError extends SidecarlessError {
  constructor(
    readonly reason: JwtSvidRefusal,
    message: string,
  ) {
    super('ERR_SIDECARLESS_JWT_SVID_INVALID', message);
  }
}

/** Which check refused a JWT-SVID. */
export type JwtSvidRefusal =
  | 'malformed'
  | 'header'
  | 'algorithm'
  | 'subject'
  | 'trust-domain'
  | 'key'
  | 'signature'
  | 'audience'
  | 'expired'
  | 'not-yet-valid';

/** A JWT bundle (JWK Set) that cannot be used; the whole update it came in is refused. */
export class JwtBundleError extends SidecarlessError {
  constructor(message: string) {
    super('ERR_SIDECARLESS_JWT_BUNDLE_INVALID', message);
  }
}

/**
 * No JWT-SVID can be fetched or validated now: the mesh has no Workload API (JWT-SVIDs need one),
 * the Workload API refused or is unreachable, or no JWT bundles have arrived yet.
 */
export class JwtSvidUnavailableError extends SidecarlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_JWT_SVID_UNAVAILABLE', message, options);
  }
}
