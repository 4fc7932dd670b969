import { z } from 'zod';
import { durationSchema } from './duration.js';
import { ConfigError } from './errors.js';
import { parseSpiffeId, parseWorkloadId, validateTrustDomain } from './identity/spiffe-id.js';

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

/** `host:port`, `[v6]:port`. */
export function parseAddress(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

const address = z.string().refine((v) => parseAddress(v) !== undefined, {
  message: 'must be host:port (IPv6 as [::1]:port), port 1-65535',
});

export const endpointSchema = z.union([
  address.transform((a) => ({ address: a, weight: 1 }) as EndpointConfig),
  z
    .object({
      address,
      /** The SPIFFE ID this endpoint must present; default: the service's identity. */
      identity: spiffeId.optional(),
      weight: z.number().int().min(0).max(1_000_000).default(1),
      zone: z.string().optional(),
      labels: z.record(z.string(), z.string()).optional(),
    })
    .strict(),
]);

export interface EndpointConfig {
  address: string;
  identity?: string | undefined;
  weight: number;
  zone?: string | undefined;
  labels?: Record<string, string> | undefined;
}

export const serviceSchema = z
  .object({
    endpoints: z.array(endpointSchema).default([]),
    /** Namespace of the service, for its default identity and DNS names; default: the mesh's. */
    namespace: dnsLabel.optional(),
    /** The SPIFFE ID every endpoint must present unless it names its own; default spiffe://<td>/ns/<namespace>/sa/<name>. */
    identity: spiffeId.optional(),
  })
  .strict();

const identitySchema = z.union([
  z.object({ dir: z.string().min(1), pollInterval: durationSchema.optional(), startTimeout: durationSchema.optional() }).strict(),
  z
    .object({
      ca: z.custom<object>((v) => typeof v === 'object' && v !== null && typeof (v as { issue?: unknown }).issue === 'function', {
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
]);

export const DEFAULT_POLICIES = [
  'all-authenticated',
  'deny',
  'cluster-authenticated',
  'cluster-unauthenticated',
  'all-unauthenticated',
  'audit',
] as const;
export type DefaultPolicy = (typeof DEFAULT_POLICIES)[number];

const inboundSchema = z
  .object({
    mode: z.enum(['strict', 'permissive']).default('strict'),
    /** A policy object from loadPolicy, a policy document (YAML/JSON text or object), or a file path that is watched. */
    policy: z.unknown().optional(),
    defaultPolicy: z.enum(DEFAULT_POLICIES).default('all-authenticated'),
    /** Request headers that claim an identity; removed before the app sees a request. */
    identityHeaders: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .default({ mode: 'strict', defaultPolicy: 'all-authenticated', identityHeaders: [] });

const outboundSchema = z
  .object({
    egress: z.enum(['allow', 'deny']).default('allow'),
    connectTimeout: durationSchema.default(10_000),
    services: z.record(dnsLabel, serviceSchema).default({}),
  })
  .strict()
  .default({ egress: 'allow', connectTimeout: 10_000, services: {} });

const adminSchema = z
  .object({
    port: z.number().int().min(0).max(65535),
    host: z.string().default('127.0.0.1'),
  })
  .strict();

export const meshOptionsSchema = z
  .object({
    service: dnsLabel,
    namespace: dnsLabel.default('default'),
    trustDomain: trustDomain.default('cluster.local'),
    spiffeId: spiffeId.optional(),
    identity: identitySchema.optional(),
    inbound: inboundSchema,
    outbound: outboundSchema,
    labels: z.record(z.string(), z.string()).default({}),
    admin: adminSchema.optional(),
    logger: z
      .custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).warn === 'function', {
        message: 'must have warn(), info() and error() methods',
      })
      .optional(),
  })
  .strict();

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export type MeshOptionsInput = z.input<typeof meshOptionsSchema>;
export type MeshConfig = z.output<typeof meshOptionsSchema> & { spiffeId: string };
export type ServiceConfig = z.output<typeof serviceSchema>;

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

function withEnv(input: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = { ...input };
  const set = (key: string, value: string | undefined) => {
    if (value === undefined || value === '') return;
    const [a, b] = key.split('.') as [string, string | undefined];
    if (b === undefined) {
      if (out[a] === undefined) out[a] = value;
      return;
    }
    const inner = (out[a] ?? {}) as Record<string, unknown>;
    if (a === 'identity' && out.identity !== undefined) return; // code chose an identity: env does not override
    if (inner[b] === undefined) out[a] = { ...inner, [b]: value };
  };
  for (const [name, key] of Object.entries(ENV)) set(key, env[name]);
  return out;
}

/** Formats zod issues as `path: message` lines. */
export function formatIssues(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): Array<{ path: string; message: string }> {
  return issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
}

/** Validates options (with SIDECARLESS_* environment variables for unset ones). Throws ConfigError naming each bad path. */
export function resolveConfig(input: MeshOptionsInput, env: NodeJS.ProcessEnv = process.env): MeshConfig {
  if (typeof input !== 'object' || input === null) throw new ConfigError('createMesh needs an options object, e.g. { service: "orders" }');
  const parsed = meshOptionsSchema.safeParse(withEnv(input as Record<string, unknown>, env));
  if (!parsed.success) {
    const issues = formatIssues(parsed.error.issues);
    throw new ConfigError(
      `invalid sidecarless options:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`,
      issues,
    );
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
  return { ...c, spiffeId: spiffe };
}
