import { SidecarlessError } from '../errors.js';

/**
 * A mesh request ran out of time: `kind: 'request'` when `timeout.request` (the whole request)
 * elapsed, `'per-try'` when the last try hit `timeout.perTry` and no retry was left.
 */
export class OutboundTimeoutError extends SidecarlessError {
  constructor(
    readonly service: string,
    readonly kind: 'request' | 'per-try',
    readonly timeoutMs: number,
  ) {
    super(
      'ERR_SIDECARLESS_TIMEOUT',
      kind === 'request'
        ? `request to mesh service "${service}" timed out after ${timeoutMs} ms (timeout.request); raise it, or find why the service is slow.`
        : `a try to mesh service "${service}" timed out after ${timeoutMs} ms (timeout.perTry) and no retry was possible.`,
    );
  }
}

/** What a Node or undici error code means, in words, for the messages below. */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens there',
  ECONNRESET: 'the connection was reset (during the TLS handshake this usually means the server does not trust our identity)',
  EPIPE: 'the connection was closed while we wrote to it',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  EHOSTDOWN: 'the host is down',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved (DNS failure)',
  EADDRNOTAVAIL: 'the address is not available',
  UND_ERR_SOCKET: 'the server closed the connection',
  UND_ERR_HEADERS_TIMEOUT: 'no response headers arrived in time (undici headersTimeout)',
  UND_ERR_CLOSED: 'the connection pool was closed',
  UND_ERR_DESTROYED: 'the connection pool was destroyed',
};

function causeText(cause: unknown): string {
  const e = cause as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const said = code !== undefined ? CAUSES[code] : undefined;
  if (said) return `${said} (${code})`;
  const msg = typeof e?.message === 'string' && e.message ? e.message : String(cause);
  return code ? `${msg} (${code})` : msg;
}

function tried(tries: number): string {
  return tries > 1 ? ` (the last of ${tries} tries)` : '';
}

/**
 * A try could not connect to a mesh endpoint (refused, unreachable, no route, the TLS handshake
 * broke off). Nothing was sent. The Node/undici error is its `cause`.
 */
export class EndpointConnectError extends SidecarlessError {
  constructor(
    readonly service: string,
    readonly endpoint: string,
    cause: unknown,
    tries = 1,
  ) {
    super(
      'ERR_SIDECARLESS_CONNECT_FAILED',
      `cannot connect to mesh service "${service}" at endpoint ${endpoint}${tried(tries)}: ${causeText(cause)}. ` +
        `Check that "${service}" runs there, or fix outbound.services.${service}.endpoints.`,
      { cause },
    );
  }
}

/**
 * The connection to a mesh endpoint broke after the request was (partly) sent and before a response
 * arrived (reset, closed, headers timeout). The Node/undici error is its `cause`.
 */
export class EndpointFailedError extends SidecarlessError {
  constructor(
    readonly service: string,
    readonly endpoint: string,
    cause: unknown,
    tries = 1,
  ) {
    super(
      'ERR_SIDECARLESS_ENDPOINT_FAILED',
      `request to mesh service "${service}" at endpoint ${endpoint} failed before a response${tried(tries)}: ${causeText(cause)}. ` +
        `The server may have crashed or closed the connection; its logs say why.`,
      { cause },
    );
  }
}

/** `mesh.fetch` / `mesh.dispatcher` used after `mesh.close()`. */
export class MeshClosedError extends SidecarlessError {
  /** `action`: what was refused instead of a request (`mesh.setService`). */
  constructor(options?: { cause?: unknown; action?: string }) {
    super(
      'ERR_SIDECARLESS_MESH_CLOSED',
      options?.action
        ? `the mesh is closed (mesh.close() was called), so ${options.action} changed nothing: create a new mesh with createMesh().`
        : 'the mesh is closed (mesh.close() was called), so this request was not sent or not finished: create a new mesh with createMesh() to send requests.',
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
  }
}

/**
 * A single-label host (`http://paymnets/`) that is not a mesh service. Refused whatever
 * `outbound.egress` says: a name without a dot is what a mesh service is called, so it is most
 * likely a typo, and it must not go out as plaintext HTTP.
 */
export class UnknownServiceError extends SidecarlessError {
  constructor(
    readonly host: string,
    readonly services: readonly string[],
    readonly suggestion: string | undefined,
  ) {
    const list = services.length ? `mesh services: ${services.join(', ')}` : 'no mesh services are configured';
    super(
      'ERR_SIDECARLESS_UNKNOWN_SERVICE',
      `"${host}" is not a mesh service${suggestion ? `: did you mean "${suggestion}"?` : ''} (${list}). ` +
        `A host name without a dot is never sent outside the mesh, whatever outbound.egress says. ` +
        `Add it to outbound.services, or write the host's full DNS name to reach it outside the mesh.`,
    );
  }
}

/**
 * A request needed something a live control plane had not delivered (a split backend, a service's
 * endpoints) and it did not arrive within `outbound.pendingTimeout`.
 */
/**
 * A host no service holds, which the xDS control plane had not answered for (a mesh service, or
 * none) within outbound.pendingTimeout. Fail closed: it is not sent as egress while unknown.
 */
export class DiscoveryPendingError extends SidecarlessError {
  constructor(
    readonly host: string,
    readonly waitingFor: string,
    readonly waitedMs: number,
    readonly source: string,
  ) {
    super(
      'ERR_SIDECARLESS_DISCOVERY_PENDING',
      `cannot route to "${host}": ${source} had not said within ${waitedMs} ms whether it is a mesh service (waiting for ${waitingFor}). ` +
        `A host the control plane does not know is taken as not existing 15 s after it is first asked for, then follows outbound.egress; ` +
        `check the control plane (/config, sidecarless stat), or raise outbound.pendingTimeout.`,
    );
  }
}

export class PendingConfigError extends SidecarlessError {
  constructor(
    readonly service: string,
    readonly missing: string,
    readonly waitedMs: number,
    readonly source: string,
  ) {
    const what = missing === service ? `the endpoints of "${service}"` : `"${missing}", a split backend of "${service}"`;
    super(
      'ERR_SIDECARLESS_CONFIG_PENDING',
      `cannot route to mesh service "${service}": ${what} had not been delivered by ${source} after ${waitedMs} ms. ` +
        (source.startsWith('xds:')
          ? `Check the control plane: ${missing === service ? 'its ClusterLoadAssignment' : `its Cluster "${missing}"`} is asked for but not delivered (/config, sidecarless stat).`
          : `Add it (mesh.setService('${missing}', { endpoints: [...] })), or check the control plane (mesh.snapshot(), /config).`),
    );
  }
}
