import { parseWorkloadName } from './identity/name.js';
import { serverNameProblem } from './outbound/server-name.js';
import { z } from 'zod';
import { durationSchema } from './duration.js';
import { ConfigError } from './errors.js';
import { describe, readableIssues } from './zod-issues.js';
import { parseSpiffeId, parseWorkloadId, validateTrustDomain } from './identity/spiffe-id.js';
import { type Logger } from './logger.js';
import { type AuditRecord } from './policy/audit.js';
import { DEFAULT_POLICIES, type DefaultPolicy } from './policy/model.js';
import { parseAddress } from './outbound/address.js';
import { parseWorkloadApiAddress } from './sources/workload-api-address.js';
import { type LinkerdConfig, linkerdSchema, resolveLinkerd } from './config/linkerd.js';

/** Kubernetes-style DNS label: what service and namespace names are. */
const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label: lower-case letters, digits and "-", at most 63');

const trustDomain = z.string().superRefine((v, ctx) => {
  try {
    validateTrustDomain(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

const spiffeId = z.string().superRefine((v, ctx) => {
  try {
    parseWorkloadId(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

/** An endpoint's or service's identity: a workload SPIFFE ID, or a DNS-like identity (Linkerd's `sa.ns.serviceaccount.identity.linkerd.td`). */
const peerName = z.string().superRefine((v, ctx) => {
  try {
    parseWorkloadName(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

/** The TLS server name (SNI) to send: a DNS name, never an IP address. */
const serverName = z.string().superRefine((v, ctx) => {
  const why = serverNameProblem(v);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

export { parseAddress };

const address = z.string().refine((v) => parseAddress(v) !== undefined, {
  message: 'must be host:port (IPv6 as [::1]:port), port 1-65535',
});

/** An endpoint: `'host:port'`, or an object. A string is read as `{ address }`, so errors name the real problem. */
export const endpointSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { address: v } : v),
  z
    .object({
      address,
      /** The SPIFFE ID (or DNS-like identity) this endpoint must present; default: the service's identity. */
      identity: peerName.optional(),
      /** The SNI to send to it (Linkerd's tls_identity.server_name); default: the service's hostname. */
      serverName: serverName.optional(),
      weight: z.number().int().min(0).max(1_000_000).default(1),
      zone: z.string().optional(),
      labels: z.record(z.string(), z.string()).optional(),
    })
    .strict(),
);

/** What callers may pass for an endpoint (`mesh.setEndpoints`, `outbound.services.<name>.endpoints`). */
export type EndpointInput =
  | string
  | { address: string; identity?: string; serverName?: string; weight?: number; zone?: string; labels?: Record<string, string> };

export interface EndpointConfig {
  address: string;
  identity?: string | undefined;
  serverName?: string | undefined;
  weight: number;
  zone?: string | undefined;
  labels?: Record<string, string> | undefined;
}

const BALANCERS = ['p2c-ewma', 'least-request', 'round-robin', 'random'] as const;
const FAILURE_KINDS = ['connect', 'reset', 'timeout'] as const;

/** Peak-EWMA settings (docs/traffic.md); durations as '30ms' or milliseconds. */
const ewmaSchema = z
  .object({
    defaultRtt: durationSchema.optional(),
    decay: durationSchema.optional(),
    failurePenaltyFactor: z.number().min(1).optional(),
    maxFailurePenalty: durationSchema.optional(),
  })
  .strict();

/** Consecutive-failures accrual, or false to never eject. */
const failureAccrualSchema = z.union([
  z.literal(false),
  z
    .object({
      consecutiveFailures: z.number().int().min(1).optional(),
      minPenalty: durationSchema.optional(),
      maxPenalty: durationSchema.optional(),
      jitterRatio: z.number().min(0).max(10).optional(),
    })
    .strict(),
]);

/** Retry policy and budget, or false for no retries. Unset fields take the defaults of docs/traffic.md. */
const retryObjectSchema = z
    .object({
      maxRetries: z.number().int().min(0).max(10).optional(),
      /** Failure kinds and response statuses retried: default ['connect', 'reset', 'timeout', 502, 503, 504]. */
      retryOn: z.array(z.union([z.enum(FAILURE_KINDS), z.number().int().min(400).max(599)])).optional(),
      /** Methods retried after anything but a connect failure: default GET HEAD OPTIONS PUT DELETE TRACE. */
      methods: z.array(z.string().regex(/^[A-Za-z]+$/, 'must be an HTTP method name')).optional(),
      retryConnectFailuresForAnyMethod: z.boolean().optional(),
      backoff: z.object({ base: durationSchema.optional(), max: durationSchema.optional(), multiplier: z.number().min(1).optional() }).strict().optional(),
      honourRetryAfter: z.boolean().optional(),
      maxRetryAfter: durationSchema.optional(),
      /** Largest request body buffered for replay (bytes); larger bodies are not retried. Default 65536. */
      maxReplayBodyBytes: z.number().int().min(0).max(16 * 1024 * 1024).optional(),
      budget: z
        .object({
          retryRatio: z.number().min(0).max(100).optional(),
          minRetriesPerSecond: z.number().min(0).optional(),
          window: durationSchema.optional(),
        })
        .strict()
        .optional(),
    })
    .strict();
const retrySchema = z.union([z.literal(false), retryObjectSchema]);
/** A route's retry policy: the budget stays the service's. */
const routeRetrySchema = z.union([z.literal(false), retryObjectSchema.omit({ budget: true }).strict()]);

const timeoutSchema = z
  .object({
    /** The whole request: every try, backoff and the response body. Default none. */
    request: durationSchema.optional(),
    /** Each try, until response headers; a try cut by it is retried. Default none. */
    perTry: durationSchema.optional(),
  })
  .strict();

/** Weighted backends (canary, blue-green). A backend is another mesh service, or the service itself (its own endpoints). */
const splitSchema = z
  .array(z.object({ service: dnsLabel, weight: z.number().int().min(0).max(1_000_000) }).strict())
  .min(1)
  .superRefine((list, ctx) => {
    if (!list.some((b) => b.weight > 0)) ctx.addIssue({ code: 'custom', message: 'at least one backend needs a weight > 0' });
    const seen = new Set<string>();
    list.forEach((b, i) => {
      if (seen.has(b.service)) ctx.addIssue({ code: 'custom', path: [i, 'service'], message: `"${b.service}" is listed twice` });
      seen.add(b.service);
    });
  });

const regexString = z.string().superRefine((v, ctx) => {
  try {
    new RegExp(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(e as Error).message}` });
  }
});

const routeMatchSchema = z
  .object({
    /** Exact path, path prefix (by segment: '/a' matches '/a' and '/a/b', not '/ab') or an anchored regex; the query is ignored. */
    path: z.union([
      z.object({ exact: z.string().startsWith('/') }).strict(),
      z.object({ prefix: z.string().startsWith('/') }).strict(),
      z.object({ regex: regexString }).strict(),
    ]).optional(),
    method: z.union([z.string().regex(/^[A-Za-z]+$/), z.array(z.string().regex(/^[A-Za-z]+$/)).min(1)]).optional(),
    /** Header name → exact value, or { regex }, or { present: true|false }. Names are case-insensitive. */
    headers: z
      .record(
        z.string().min(1),
        z.union([z.string(), z.object({ regex: regexString }).strict(), z.object({ present: z.boolean() }).strict()]),
      )
      .optional(),
  })
  .strict();

const routeSchema = z
  .object({
    name: z.string().min(1).optional(),
    match: routeMatchSchema.default({}),
    timeout: timeoutSchema.optional(),
    retry: routeRetrySchema.optional(),
    split: splitSchema.optional(),
  })
  .strict();

const connectionsSchema = z
  .object({
    /** Connections per endpoint (undici Pool `connections`). Default 128. */
    maxPerEndpoint: z.number().int().min(1).max(100_000).optional(),
    /** How long an idle keep-alive connection is kept. Default 10 s. */
    keepAliveTimeout: durationSchema.optional(),
  })
  .strict();

export const serviceSchema = z
  .object({
    endpoints: z.array(endpointSchema).default([]),
    /** Namespace of the service, for its default identity and DNS names; default: the mesh's. */
    namespace: dnsLabel.optional(),
    /** The SPIFFE ID every endpoint must present unless it names its own; default spiffe://<td>/ns/<namespace>/sa/<name>. */
    identity: peerName.optional(),
    /**
     * The host names an app may write for it (`payments.example.com`, `payments:8080`, `*.payments.internal`);
     * default the Kubernetes forms name, name.ns, name.ns.svc, name.ns.svc.cluster.local. Given, they replace the defaults.
     */
    hostnames: z.array(z.string().min(1)).min(1).optional(),
    balancer: z.enum(BALANCERS).optional(),
    ewma: ewmaSchema.optional(),
    failureAccrual: failureAccrualSchema.optional(),
    retry: retrySchema.optional(),
    timeout: timeoutSchema.optional(),
    /** First match wins; requests that match no route use the service's settings. */
    routes: z.array(routeSchema).optional(),
    split: splitSchema.optional(),
    connections: connectionsSchema.optional(),
    /** What its endpoints speak: 'http' (HTTP/1.1, default), 'http2' or 'grpc' (HTTP/2 only, docs/grpc.md). */
    protocol: z.enum(['http', 'http2', 'grpc']).optional(),
    /** Every request to it carries `Authorization: Bearer <this mesh's JWT-SVID for audience>` (unless the app set one). */
    jwtSvid: z.object({ audience: z.union([z.string().min(1).max(2048), z.array(z.string().min(1).max(2048)).min(1)]) }).strict().optional(),
  })
  .strict();

export type RetryConfig = z.output<typeof retrySchema>;
export type TimeoutConfig = z.output<typeof timeoutSchema>;
export type SplitConfig = z.output<typeof splitSchema>;
export type SplitInput = z.input<typeof splitSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export { splitSchema };

const identitySchema = z.union([
  z.object({ dir: z.string().min(1), pollInterval: durationSchema.optional(), startTimeout: durationSchema.optional() }).strict(),
  z
    .object({
      ca: z.custom<object>((v) => typeof v === 'object' && v !== null && typeof (v as { signCsr?: unknown }).signCsr === 'function', {
        message: 'must be a dev CA from createDevCa()',
      }),
      ttl: durationSchema.optional(),
      startTimeout: durationSchema.optional(),
    })
    .strict(),
  z
    .object({
      source: z.custom<object>(
        (v) => typeof v === 'object' && v !== null && typeof (v as { getX509Svid?: unknown }).getX509Svid === 'function',
        { message: 'must be an X509Source (getX509Svid, getBundles, onUpdate, ready, close)' },
      ),
      startTimeout: durationSchema.optional(),
    })
    .strict(),
  z
    .object({
      /** The SPIFFE Workload API (a SPIRE agent): socket omitted, SPIFFE_ENDPOINT_SOCKET. */
      workloadApi: z
        .object({
          socket: z
            .string()
            .superRefine((v, ctx) => {
              try {
                parseWorkloadApiAddress(v);
              } catch (e) {
                ctx.addIssue({ code: 'custom', message: (e as Error).message });
              }
            })
            .optional(),
          /** Take the SVID with this hint (a SPIRE registration entry's hint) instead of the first. */
          hint: z.string().min(1).max(1024).optional(),
          startTimeout: durationSchema.optional(),
        })
        .strict(),
      startTimeout: durationSchema.optional(),
    })
    .strict(),
  z
    .object({
      /**
       * The SVID as PEM text the platform hands the process (environment variables, a secrets
       * manager's value): svid.pem, svid_key.pem, svid_bundle.pem. It cannot rotate.
       */
      pem: z
        .object({
          svid: pemText('CERTIFICATE', 'the SVID chain, leaf first (svid.pem)'),
          key: pemText('PRIVATE KEY', 'its PKCS#8 private key (svid_key.pem)'),
          bundle: pemText('CERTIFICATE', 'the trust bundle (svid_bundle.pem)'),
        })
        .strict(),
      startTimeout: durationSchema.optional(),
    })
    .strict(),
]);

/** PEM text holding a `-----BEGIN <label>-----` block; the value is never echoed (a key is a secret). */
function pemText(label: string, what: string) {
  return z.string().refine((v) => v.includes(`-----BEGIN ${label}-----`), { message: `must be PEM text with a ${label} block: ${what}` });
}

export { DEFAULT_POLICIES, type DefaultPolicy };

/** One audience, or several (a token for any of them is taken). */
const audienceSchema = z.union([z.string().min(1).max(2048), z.array(z.string().min(1).max(2048)).min(1)]);

/** `inbound.jwtSvid`: a bearer JWT-SVID is an identity (docs/serverless.md, "Inbound behind a front end"). */
const inboundJwtSvidSchema = z
  .object({
    /** The audience(s) this service accepts, e.g. its own SPIFFE ID. */
    audience: audienceSchema,
    /** A JWT bundle file (JWK Set or SPIFFE bundle), re-read when it changes. */
    bundle: z
      .object({
        file: z.string().min(1),
        /** The trust domain whose keys it holds; default the mesh's. */
        trustDomain: trustDomain.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** `inbound.frontEnd`: the front end that terminates TLS and forwards the client certificate; only then is one used. */
const frontEndSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('aws-api-gateway') }).strict(),
  z
    .object({
      kind: z.literal('header'),
      header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header name').transform((v) => v.toLowerCase()),
      format: z.enum(['xfcc', 'pem']),
    })
    .strict(),
]);

const inboundSchema = z
  .object({
    mode: z.enum(['strict', 'permissive']).default('strict'),
    /**
     * A policy from loadPolicy, a policy document (YAML/JSON text with a newline, or an object), or
     * the path of a YAML/JSON file that is watched (a one-line string is a path).
     */
    policy: z.unknown().optional(),
    /** When no allow rule applies. Default: 'all-authenticated' in strict mode, 'all-unauthenticated' in permissive mode. */
    defaultPolicy: z.enum(DEFAULT_POLICIES as [DefaultPolicy, ...DefaultPolicy[]]).optional(),
    /** Request headers that claim an identity; removed before the app sees a request. */
    identityHeaders: z.array(z.string().min(1)).default([]),
    /**
     * How long a new connection may stay open before it sends its first request; then it is closed.
     * Default 30 s; 0 turns the limit off (docs/security-model.md, "connection hygiene").
     */
    firstRequestTimeout: durationSchema.optional(),
    /** Where audit records go (one object per audited request); default: a JSON line on stderr. */
    audit: z.custom<(record: AuditRecord) => void>((v) => typeof v === 'function', { message: 'must be a function' }).optional(),
    /** A bearer JWT-SVID (`Authorization: Bearer …`) for one of these audiences is an identity. */
    jwtSvid: inboundJwtSvidSchema.optional(),
    /** Behind a TLS-terminating front end: where its forwarded client certificate is (verified, never trusted as is). */
    frontEnd: frontEndSchema.optional(),
  })
  .strict()
  .default({ mode: 'strict', identityHeaders: [] });

const outboundSchema = z
  .object({
    egress: z.enum(['allow', 'deny']).default('allow'),
    connectTimeout: durationSchema.default(10_000),
    /**
     * How long a request waits for what a live control plane has not delivered yet (a split
     * backend, a service's endpoints) before it fails naming it. Default 3 s (linkerd2-proxy's failfast).
     */
    pendingTimeout: durationSchema.optional(),
    services: z.record(dnsLabel, serviceSchema).default({}),
  })
  .strict()
  .default({ egress: 'allow', connectTimeout: 10_000, services: {} });

const adminSchema = z
  .object({
    port: z.number().int().min(0).max(65535),
    host: z.string().min(1).default('127.0.0.1'),
  })
  .strict();

/**
 * The path of the token file. A JWT given where the path goes (SIDECARLESS_CONTROL_PLANE_TOKEN_FILE set
 * to the token itself) is refused without echoing it: as a path it would be printed by every "cannot
 * read the token file" message, log line, /identity and /config.
 */
const tokenFile = z
  .string()
  .min(1)
  .refine((v) => !/^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(v), {
    message: 'is a token (a JWT), not the path of a file: give the path of the file that holds it (/var/run/secrets/tokens/istio-token), or the token itself as controlPlane.token',
  });

/**
 * A control plane with an Istio-compatible CA on a TLS port (istiod, `sidecarless control-plane`).
 * Without `identity`, the workload's SVID comes from its CA (DESIGN.md). env:
 * SIDECARLESS_CONTROL_PLANE (address), SIDECARLESS_CONTROL_PLANE_ROOT, SIDECARLESS_CONTROL_PLANE_TOKEN_FILE.
 */
const controlPlaneSchema = z
  .object({
    /** host:port of the control plane: istiod.istio-system.svc:15012. */
    address,
    /** PEM file of the root its TLS certificate chains to (pinned: the only trust anchor). */
    root: z.string().min(1),
    /** The bearer token, or { file } or { env } (an environment variable's name) read again on every use. */
    token: z.union([
      z.string().min(1),
      z.object({ file: tokenFile }).strict(),
      z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable (letters, digits, "_")') }).strict(),
    ]),
    /** Istio's ClusterID header. */
    clusterId: z.string().regex(/^[\x21-\x7e]+$/, 'must be visible ASCII without spaces (it is sent as a header), e.g. "Kubernetes"').optional(),
    /**
     * `host:port` the embedded control plane registers this workload at, instead of the address
     * its server listens on (a VM behind NAT, a port mapping). istiod ignores it.
     */
    advertise: address.optional(),
  })
  .strict();

/** Environment variables that fill unset `controlPlane` options (the code wins). */
export const CONTROL_PLANE_ENV = {
  SIDECARLESS_CONTROL_PLANE: 'controlPlane.address',
  SIDECARLESS_CONTROL_PLANE_ROOT: 'controlPlane.root',
  SIDECARLESS_CONTROL_PLANE_TOKEN_FILE: 'controlPlane.token.file',
} as const;

/** Fills unset controlPlane options from CONTROL_PLANE_ENV, in place; a token set in code is never replaced by the file. */
function withControlPlaneEnv(out: Record<string, unknown>, env: NodeJS.ProcessEnv, origins: Map<string, string>): void {
  const given = Object.entries(CONTROL_PLANE_ENV).filter(([name]) => env[name] !== undefined && env[name] !== '');
  if (given.length === 0) return;
  const inner = out.controlPlane ?? {};
  if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return; // a wrong type: reported as such
  const cp: Record<string, unknown> = { ...inner };
  for (const [name, key] of given) {
    const field = key.split('.')[1]!;
    if (cp[field] !== undefined) continue;
    cp[field] = field === 'token' ? { file: env[name] } : env[name];
    origins.set(field === 'token' ? 'controlPlane.token' : key, name);
  }
  out.controlPlane = cp;
}

/**
 * `telemetry`: how `/metrics` names what it serves. `dialect: 'istio'` serves Istio's standard
 * metrics (istio_requests_total, …) as well as the mesh's own; `cluster` fills Istio's
 * source_cluster / destination_cluster for this workload (Istio's global.multiCluster.clusterName).
 * `dialect: 'linkerd'` serves linkerd2-proxy's request_total, response_total and
 * response_latency_ms as well (docs/telemetry.md, "Linkerd dialect").
 */
const telemetrySchema = z
  .object({
    dialect: z.enum(['sidecarless', 'istio', 'linkerd']).default('sidecarless'),
    cluster: z.string().min(1).max(253).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a cluster name (letters, digits, ".", "_", "-")').default('unknown'),
  })
  .strict();

export const meshOptionsSchema = z
  .object({
    service: dnsLabel,
    namespace: dnsLabel.default('default'),
    trustDomain: trustDomain.default('cluster.local'),
    spiffeId: spiffeId.optional(),
    identity: identitySchema.optional(),
    /** xDS (istiod, `sidecarless control-plane`): { address, root, token }; Linkerd: { linkerd } (linkerdOptionsSchema). */
    controlPlane: controlPlaneSchema.optional(),
    inbound: inboundSchema,
    outbound: outboundSchema,
    labels: z.record(z.string(), z.string()).default({}),
    admin: adminSchema.optional(),
    telemetry: telemetrySchema.prefault({}),
    /** The app's @grpc/grpc-js (`require('@grpc/grpc-js')`): mesh.grpc builds credentials with it (grpc-js checks them by instanceof). */
    grpc: z
      .custom<import('./grpc/module.js').GrpcModule>(
        (v) => typeof v === 'object' && v !== null && typeof (v as { Server?: unknown }).Server === 'function' && typeof (v as { ServerCredentials?: unknown }).ServerCredentials === 'function',
        { message: "must be the @grpc/grpc-js module (require('@grpc/grpc-js'))" },
      )
      .optional(),
    logger: z
      .custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).warn === 'function', {
        message: 'must have warn(), info() and error() methods',
      })
      .optional(),
  })
  .strict();

/** The options of a mesh in a Linkerd mesh: `controlPlane: { linkerd: { … } }` (config/linkerd.ts), judged by this schema whenever `controlPlane` has `linkerd`. */
const linkerdOptionsSchema = meshOptionsSchema.extend({ controlPlane: z.object({ linkerd: linkerdSchema }).strict() });

export type { Logger };

export type MeshOptionsInput = Omit<z.input<typeof meshOptionsSchema>, 'controlPlane'> & {
  controlPlane?: z.input<typeof controlPlaneSchema> | { linkerd: z.input<typeof linkerdSchema> };
};
type ParsedOptions = z.output<typeof meshOptionsSchema> | z.output<typeof linkerdOptionsSchema>;
type XdsControlPlaneConfig = z.output<typeof controlPlaneSchema>;
/**
 * The options as the mesh runs on them. `controlPlane` is the xDS one only; `controlPlane.linkerd`
 * arrives resolved (every default filled in) as `linkerd`.
 */
export type MeshConfig = Omit<ParsedOptions, 'inbound' | 'controlPlane'> & {
  spiffeId: string;
  controlPlane?: XdsControlPlaneConfig;
  linkerd?: LinkerdConfig;
  /**
   * Internal, not an option: the workload runs as this DNS-like identity (a Linkerd workload), set
   * from `controlPlane.linkerd` or createMesh's internals. Its SVID must carry that one DNS SAN.
   */
  dnsIdentity?: import('./sources/workload.js').MeshDnsIdentity;
  inbound: Omit<ParsedOptions['inbound'], 'defaultPolicy'> & { defaultPolicy: DefaultPolicy; defaultPolicyExplicit: boolean };
};
export type ServiceConfig = z.output<typeof serviceSchema>;
/** What `mesh.setService` and `outbound.services.<name>` take. */
export type ServiceInput = z.input<typeof serviceSchema>;

/** Environment variables that fill options the code did not set (the code wins). */
export const ENV = {
  SIDECARLESS_SERVICE: 'service',
  SIDECARLESS_NAMESPACE: 'namespace',
  SIDECARLESS_TRUST_DOMAIN: 'trustDomain',
  SIDECARLESS_SPIFFE_ID: 'spiffeId',
  SIDECARLESS_IDENTITY_DIR: 'identity.dir',
  SIDECARLESS_INBOUND_MODE: 'inbound.mode',
  SIDECARLESS_EGRESS: 'outbound.egress',
} as const;

/** The options with SIDECARLESS_* filling unset ones, and which dotted path came from which variable. */
function withEnv(input: Record<string, unknown>, env: NodeJS.ProcessEnv): { options: Record<string, unknown>; origins: Map<string, string> } {
  const out: Record<string, unknown> = { ...input };
  const origins = new Map<string, string>();
  const set = (name: string, key: string, value: string | undefined) => {
    if (value === undefined || value === '') return;
    const [a, b] = key.split('.') as [string, string | undefined];
    if (b === undefined) {
      if (out[a] === undefined) {
        out[a] = value;
        origins.set(key, name);
      }
      return;
    }
    if (a === 'identity' && out.identity !== undefined) return; // code chose an identity: env does not override
    const inner = out[a] ?? {};
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return; // a wrong type: reported as such
    if ((inner as Record<string, unknown>)[b] === undefined) {
      out[a] = { ...inner, [b]: value };
      origins.set(key, name);
    }
  };
  for (const [name, key] of Object.entries(ENV)) set(name, key, env[name]);
  pemFromEnv(out, origins, env);
  workloadApiFromEnv(out, origins, env);
  return { options: out, origins };
}

/** The SVID as PEM text in environment variables (a function's secrets): `identity.pem`. */
export const PEM_ENV = {
  SIDECARLESS_SVID_PEM: 'svid',
  SIDECARLESS_SVID_KEY_PEM: 'key',
  SIDECARLESS_SVID_BUNDLE_PEM: 'bundle',
} as const;

/**
 * SIDECARLESS_SVID_PEM, _KEY_PEM, _BUNDLE_PEM: the identity when none is configured and
 * SIDECARLESS_IDENTITY_DIR is not set (explicit identity > SIDECARLESS_IDENTITY_DIR > these >
 * SPIFFE_ENDPOINT_SOCKET > the control plane's CA > dev CA). One set alone is an error naming the others.
 */
function pemFromEnv(out: Record<string, unknown>, origins: Map<string, string>, env: NodeJS.ProcessEnv): void {
  const given = Object.entries(PEM_ENV).filter(([name]) => env[name] !== undefined && env[name] !== '');
  if (given.length === 0 || out.identity !== undefined) return;
  out.identity = { pem: Object.fromEntries(given.map(([name, key]) => [key, env[name]])) };
  for (const [name, key] of Object.entries(PEM_ENV)) origins.set(`identity.pem.${key}`, name);
}

/**
 * SPIFFE_ENDPOINT_SOCKET (SPIFFE_Workload_Endpoint.md §4): the socket of `identity.workloadApi`
 * when it names none, and the identity itself when none is configured and SIDECARLESS_IDENTITY_DIR
 * is not set (explicit identity > SIDECARLESS_IDENTITY_DIR > SPIFFE_ENDPOINT_SOCKET > dev CA).
 */
function workloadApiFromEnv(out: Record<string, unknown>, origins: Map<string, string>, env: NodeJS.ProcessEnv): void {
  const socket = env.SPIFFE_ENDPOINT_SOCKET;
  if (socket === undefined || socket === '') return;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (out.identity === undefined) out.identity = { workloadApi: { socket } };
  else if (isObject(out.identity) && isObject(out.identity.workloadApi) && out.identity.workloadApi.socket === undefined) {
    out.identity = { ...out.identity, workloadApi: { ...out.identity.workloadApi, socket } };
  } else return;
  origins.set('identity.workloadApi.socket', 'SPIFFE_ENDPOINT_SOCKET');
}

/** One problem with the options: its dotted path, what is wrong, and the variable it came from. */
export interface OptionIssue {
  path: string;
  message: string;
  /** The environment variable the value came from, when it did. */
  env?: string;
}

const IDENTITY_EXAMPLES = "{ dir: './certs/orders' }, { ca: await createDevCa() }, { source: x509Source }, { workloadApi: { socket: 'unix:///run/spire/sockets/agent.sock' } } or { pem: { svid, key, bundle } }";

/**
 * Formats zod issues as readable `{ path, message }` (see zod-issues.ts). With the `input` and the
 * `schema` that judged it, messages name what was given and what would be right; `origins` maps
 * dotted paths filled from environment variables to those variables.
 */
export function formatIssues(
  issues: ReadonlyArray<z.core.$ZodIssue>,
  input?: unknown,
  schema?: z.core.$ZodType,
  origins: ReadonlyMap<string, string> = new Map(),
): OptionIssue[] {
  if (!schema) return issues.map((i) => ({ path: (i.path as PropertyKey[]).map(String).join('.') || '(root)', message: i.message }));
  const envFor = (path: string) => [...origins].find(([p]) => path === p || path.startsWith(`${p}.`))?.[1];
  const required = (path: PropertyKey[]) => {
    const key = path.map(String).join('.');
    const variable = Object.entries({ ...ENV, ...CONTROL_PLANE_ENV }).find(([, k]) => k === key)?.[0];
    if (key === 'service') return `pass { service: 'orders' } or set ${variable}`;
    return variable ? `pass it, or set ${variable}` : undefined;
  };
  return readableIssues(issues, input, schema, { noun: 'option', required }).map((i) => {
    const path = i.path.map(String).join('.') || '(root)';
    let message = i.message;
    if (path === 'identity' && message.startsWith('takes exactly one of')) message += `. For example ${IDENTITY_EXAMPLES}`;
    if (/^controlPlane\.[^.]+$/.test(path) && path !== 'controlPlane.linkerd' && message.startsWith('unknown option') && hasLinkerd(input)) {
      message = `must not be set beside controlPlane.linkerd: it belongs to an xDS control plane (istiod, sidecarless control-plane); a mesh has one control plane`;
    }
    if (path === 'controlPlane.token' && message.endsWith('got nothing')) message = 'is required: pass a token, { file } or { env }, or set SIDECARLESS_CONTROL_PLANE_TOKEN_FILE';
    if (/\.routes\.\d+\.retry\.budget$/.test(path) && message.startsWith('unknown option')) message = "a route has no budget of its own: set the service's retry.budget";
    // An endpoint string is read as { address } before it is judged: say both forms.
    if (/(^|\.)endpoints\.\d+$/.test(path) && message.startsWith('must be an object')) message = message.replace(/^must be an object \([^)]*\)/, `must be "host:port" or { address: "host:port", identity?, weight?, zone?, labels? }`);
    const env = envFor(path);
    if (!env && path.startsWith('controlPlane.') && message.startsWith('is required')) {
      // The control plane came from the environment, not from code: say which variable made it one.
      const from = [...new Set([...origins].filter(([p]) => p.startsWith('controlPlane.')).map(([, v]) => v))];
      if (from.length > 0) message += ` (${from.join(' and ')} ${from.length > 1 ? 'are' : 'is'} set: a control plane needs address, root and token)`;
    }
    return env ? { path, message, env } : { path, message };
  });
}

function hasLinkerd(input: unknown): boolean {
  const cp = typeof input === 'object' && input !== null ? (input as { controlPlane?: unknown }).controlPlane : undefined;
  return typeof cp === 'object' && cp !== null && 'linkerd' in cp;
}

/** `  - path message` lines: a message that reads as a predicate follows its path directly. */
export function issueLines(issues: ReadonlyArray<OptionIssue>): string {
  const more = issues.length > 50 ? [`  … and ${issues.length - 50} more (err.issues lists them all)`] : [];
  return issues
    .slice(0, 50)
    .map((i) => {
      const subject = i.env ? `${i.path} (from ${i.env})` : i.path;
      return `  - ${subject}${/^(is|must|takes)\b/.test(i.message) ? ' ' : ': '}${i.message}`;
    })
    .concat(more)
    .join('\n');
}

/** Validates options (with SIDECARLESS_* environment variables for unset ones). Throws ConfigError naming each bad path. */
export function resolveConfig(input: MeshOptionsInput, env: NodeJS.ProcessEnv = process.env): MeshConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError(`createMesh needs an options object, e.g. createMesh({ service: 'orders' }); got ${describe(input)}`);
  }
  const { options, origins } = withEnv(input as Record<string, unknown>, env);
  withControlPlaneEnv(options, env, origins);
  const schema = hasLinkerd(options) ? linkerdOptionsSchema : meshOptionsSchema;
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error.issues, options, schema, origins);
    throw new ConfigError(`invalid sidecarless options:\n${issueLines(issues)}`, issues);
  }
  const c = parsed.data;
  const spiffe = c.spiffeId ?? `spiffe://${c.trustDomain}/ns/${c.namespace}/sa/${c.service}`;
  const id = parseSpiffeId(spiffe);
  if (id.trustDomain !== c.trustDomain) {
    throw new ConfigError(
      `invalid sidecarless options:\n  - spiffeId: ${spiffe} is not in trust domain ${c.trustDomain}`,
      [{ path: 'spiffeId', message: `not in trust domain ${c.trustDomain}` }],
    );
  }
  checkWorkloadApi(c.identity);
  const defaultPolicy = c.inbound.defaultPolicy ?? (c.inbound.mode === 'permissive' ? 'all-unauthenticated' : 'all-authenticated');
  const { controlPlane, ...rest } = c;
  const planes =
    controlPlane === undefined
      ? {}
      : 'linkerd' in controlPlane
        ? { linkerd: resolveLinkerd(controlPlane.linkerd, { service: c.service, namespace: c.namespace, trustDomain: c.trustDomain, spiffeId: c.spiffeId }, env) }
        : { controlPlane };
  return { ...rest, ...planes, spiffeId: spiffe, inbound: { ...c.inbound, defaultPolicy, defaultPolicyExplicit: c.inbound.defaultPolicy !== undefined } };
}

/** A Workload API identity needs a socket (given, or SPIFFE_ENDPOINT_SOCKET) and one startTimeout. */
function checkWorkloadApi(identity: ParsedOptions['identity']): void {
  if (!identity || !('workloadApi' in identity)) return;
  const w = identity.workloadApi;
  const fail = (path: string, message: string): never => {
    throw new ConfigError(`invalid sidecarless options:\n  - ${path}: ${message}`, [{ path, message }]);
  };
  if (w.socket === undefined) {
    fail('identity.workloadApi.socket', "no Workload API address: pass socket: 'unix:///run/spire/sockets/agent.sock' (a SPIRE agent's socket), or set SPIFFE_ENDPOINT_SOCKET");
  }
  if (w.startTimeout !== undefined && identity.startTimeout !== undefined && w.startTimeout !== identity.startTimeout) {
    fail('identity.workloadApi.startTimeout', `differs from identity.startTimeout (${identity.startTimeout} ms): set one of them`);
  }
}
