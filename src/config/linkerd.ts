/**
 * `controlPlane: { linkerd: { … } }`: joining a Linkerd mesh. The schema takes what the user may
 * set (every field optional); `resolveLinkerd` fills the rest as a Linkerd install and
 * linkerd2-proxy's injected environment do (charts/partials/templates/_proxy.tpl): the code wins,
 * then LINKERD2_PROXY_* variables, then Linkerd's defaults. Pure: nothing is read but `env` (a
 * trust-anchors file is read when the control plane opens).
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { parseAddress } from '../outbound/address.js';

/** linkerd2-proxy's variables that fill unset `controlPlane.linkerd` options (never turn Linkerd on by themselves). */
export const LINKERD_ENV = {
  LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS: 'controlPlane.linkerd.trustAnchors.pem',
  LINKERD2_PROXY_IDENTITY_TOKEN_FILE: 'controlPlane.linkerd.token.file',
  LINKERD2_PROXY_IDENTITY_SVC_ADDR: 'controlPlane.linkerd.identity.address',
  LINKERD2_PROXY_IDENTITY_SVC_NAME: 'controlPlane.linkerd.identity.serverName',
  LINKERD2_PROXY_DESTINATION_SVC_ADDR: 'controlPlane.linkerd.destination.address',
  LINKERD2_PROXY_DESTINATION_SVC_NAME: 'controlPlane.linkerd.destination.serverName',
  LINKERD2_PROXY_POLICY_SVC_ADDR: 'controlPlane.linkerd.policy.address',
  LINKERD2_PROXY_POLICY_SVC_NAME: 'controlPlane.linkerd.policy.serverName',
  LINKERD2_PROXY_POLICY_WORKLOAD: 'controlPlane.linkerd.workload',
  LINKERD2_PROXY_DESTINATION_CONTEXT: 'controlPlane.linkerd (destination context token)',
  LINKERD2_PROXY_IDENTITY_LOCAL_NAME: 'controlPlane.linkerd (the workload identity)',
} as const;

/** The projected service-account token linkerd2-proxy reads (audience identity.l5d.io). */
export const LINKERD_TOKEN_FILE = '/var/run/secrets/tokens/linkerd-identity-token';
export const LINKERD_NAMESPACE = 'linkerd';
/** Cluster domain of Linkerd's service addresses (`svc.<domain>`). */
export const LINKERD_CLUSTER_DOMAIN = 'cluster.local';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A lower-case RFC 1123 name: what Linkerd's identities and server names are. */
export function isDnsName(v: string): boolean {
  return v.length > 0 && v.length <= 253 && v.split('.').every((l) => DNS_LABEL.test(l));
}

const dnsLabel = z.string().regex(DNS_LABEL, 'must be a DNS label: lower-case letters, digits and "-", at most 63');
const dnsName = z.string().refine(isDnsName, { message: 'must be a lower-case DNS name (labels of letters, digits and "-", dot-separated, at most 253)' });
const address = z.string().refine((v) => parseAddress(v) !== undefined, { message: 'must be host:port (IPv6 as [::1]:port), port 1-65535' });
const service = z.object({ address: address.optional(), serverName: dnsName.optional() }).strict();

export const linkerdSchema = z
  .object({
    /** Linkerd's control-plane namespace. */
    namespace: dnsLabel.optional(),
    /** The trust anchors (PEM): the only roots of Linkerd identities and of its control plane's TLS. */
    trustAnchors: z.union([z.object({ file: z.string().min(1) }).strict(), z.object({ pem: z.string().min(1) }).strict()]).optional(),
    /** The projected service-account token, re-read on every Certify. */
    token: z.object({ file: z.string().min(1) }).strict().optional(),
    identity: service.optional(),
    destination: service.optional(),
    policy: service.optional(),
    /** The pod this workload is to Linkerd's policy controller (WatchPort's workload). */
    workload: z.object({ namespace: dnsLabel.optional(), pod: z.string().min(1).max(253).optional() }).strict().optional(),
  })
  .strict();

export type LinkerdInput = z.output<typeof linkerdSchema>;

export interface LinkerdService {
  readonly address: string;
  /** The DNS identity its TLS certificate must carry (and the SNI sent). */
  readonly serverName: string;
}

/** `controlPlane.linkerd` with every default filled in (MeshConfig.linkerd). */
export interface LinkerdConfig {
  /** Linkerd's control-plane namespace ('linkerd'). */
  readonly namespace: string;
  /** Linkerd's identity trust domain ('cluster.local'). */
  readonly trustDomain: string;
  /** `identity.<namespace>.<trustDomain>`: the suffix of every identity Linkerd issues (dnsBundleKey's domain). */
  readonly identityDomain: string;
  /** The workload's own DNS identity: `<sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<trustDomain>`. */
  readonly localName: string;
  readonly trustAnchors: { readonly file: string } | { readonly pem: string };
  readonly token: { readonly file: string };
  readonly identity: LinkerdService;
  readonly destination: LinkerdService;
  readonly policy: LinkerdService;
  readonly workload: { readonly namespace: string; readonly pod: string };
  /** Destination.Get's context_token (JSON `{"ns","nodeName","pod"}`). */
  readonly contextToken: string;
  /** WatchPort's workload (JSON `{"ns","pod"}`). */
  readonly workloadToken: string;
}

/** What the rest of the mesh's options say that Linkerd's defaults derive from. */
export interface LinkerdMeshContext {
  readonly service: string;
  readonly namespace: string;
  readonly trustDomain: string;
  readonly spiffeId?: string | undefined;
}

function fail(path: string, message: string, env?: string): never {
  const subject = env ? `${path} (from ${env})` : path;
  throw new ConfigError(`invalid sidecarless options:\n  - ${subject}${/^(is|must)\b/.test(message) ? ' ' : ': '}${message}`, [{ path, message, ...(env && { env }) }]);
}

const set = (env: NodeJS.ProcessEnv, name: keyof typeof LINKERD_ENV): string | undefined => {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
};

/** One control-plane service: the code's fields, then the variables, then the install's names. */
function serviceOf(given: LinkerdInput['identity'], env: NodeJS.ProcessEnv, kind: 'IDENTITY' | 'DESTINATION' | 'POLICY', dflt: LinkerdService): LinkerdService {
  const path = `controlPlane.linkerd.${kind.toLowerCase()}`;
  const addrVar = `LINKERD2_PROXY_${kind}_SVC_ADDR` as const;
  const nameVar = `LINKERD2_PROXY_${kind}_SVC_NAME` as const;
  const fromEnvAddr = given?.address === undefined ? set(env, addrVar) : undefined;
  const fromEnvName = given?.serverName === undefined ? set(env, nameVar) : undefined;
  if (fromEnvAddr !== undefined && parseAddress(fromEnvAddr) === undefined) fail(`${path}.address`, 'must be host:port (IPv6 as [::1]:port), port 1-65535', addrVar);
  if (fromEnvName !== undefined && !isDnsName(fromEnvName)) fail(`${path}.serverName`, 'must be a lower-case DNS name', nameVar);
  return { address: given?.address ?? fromEnvAddr ?? dflt.address, serverName: given?.serverName ?? fromEnvName ?? dflt.serverName };
}

/** `{"ns":"…","pod":"…"}` (today's proxies) or the legacy `ns:pod`. */
function parseWorkloadVar(v: string): { namespace?: string; pod?: string } {
  if (v.startsWith('{')) {
    let o: unknown;
    try {
      o = JSON.parse(v);
    } catch {
      return fail('controlPlane.linkerd.workload', 'must be JSON {"ns":"<namespace>","pod":"<pod>"} or "<namespace>:<pod>"', 'LINKERD2_PROXY_POLICY_WORKLOAD');
    }
    const r = (o ?? {}) as { ns?: unknown; pod?: unknown };
    return { ...(typeof r.ns === 'string' && r.ns && { namespace: r.ns }), ...(typeof r.pod === 'string' && r.pod && { pod: r.pod }) };
  }
  const i = v.indexOf(':');
  if (i <= 0) fail('controlPlane.linkerd.workload', 'must be JSON {"ns":"<namespace>","pod":"<pod>"} or "<namespace>:<pod>"', 'LINKERD2_PROXY_POLICY_WORKLOAD');
  return { namespace: v.slice(0, i), pod: v.slice(i + 1) };
}

/** The service account of the mesh's SPIFFE ID (`/ns/<ns>/sa/<sa>`), else the service's name (Linkerd's default: the pod's service account). */
function serviceAccountOf(ctx: LinkerdMeshContext): string {
  const m = ctx.spiffeId === undefined ? null : /\/ns\/[^/]+\/sa\/([^/]+)$/.exec(ctx.spiffeId);
  return m && DNS_LABEL.test(m[1]!) ? m[1]! : ctx.service;
}

/** The trust domain of a Linkerd identity of namespace `ns` (`….serviceaccount.identity.<ns>.<td>`), or undefined. */
export function trustDomainOfLinkerdName(name: string, ns: string): string | undefined {
  const marker = `.serviceaccount.identity.${ns}.`;
  // The LAST marker: a service account name may hold dots (`a.x.serviceaccount.identity.linkerd.y`),
  // and the issuer appends `.<ns>.serviceaccount.identity.<linkerd-ns>.<td>` after it.
  const i = name.lastIndexOf(marker);
  if (i <= 0) return undefined;
  const td = name.slice(i + marker.length);
  return isDnsName(td) ? td : undefined;
}

/** `controlPlane.linkerd` as parsed, with every default filled in from the environment and the mesh's options. */
export function resolveLinkerd(given: LinkerdInput, ctx: LinkerdMeshContext, env: NodeJS.ProcessEnv): LinkerdConfig {
  const ns = given.namespace ?? LINKERD_NAMESPACE;
  const localVar = set(env, 'LINKERD2_PROXY_IDENTITY_LOCAL_NAME');
  let trustDomain = ctx.trustDomain;
  if (localVar !== undefined) {
    const td = isDnsName(localVar) ? trustDomainOfLinkerdName(localVar, ns) : undefined;
    if (td === undefined) fail('controlPlane.linkerd', `LINKERD2_PROXY_IDENTITY_LOCAL_NAME ${JSON.stringify(localVar)} is not a Linkerd identity of namespace ${ns} (<sa>.<ns>.serviceaccount.identity.${ns}.<trust-domain>)`, 'LINKERD2_PROXY_IDENTITY_LOCAL_NAME');
    trustDomain = td;
  }
  const identityDomain = `identity.${ns}.${trustDomain}`;
  const w = set(env, 'LINKERD2_PROXY_POLICY_WORKLOAD');
  const fromVar = w !== undefined && (given.workload?.namespace === undefined || given.workload?.pod === undefined) ? parseWorkloadVar(w) : {};
  if (fromVar.namespace !== undefined && given.workload?.namespace === undefined && !DNS_LABEL.test(fromVar.namespace)) {
    fail('controlPlane.linkerd.workload.namespace', `${JSON.stringify(fromVar.namespace)} must be a DNS label (a Kubernetes namespace)`, 'LINKERD2_PROXY_POLICY_WORKLOAD');
  }
  const workload = {
    namespace: given.workload?.namespace ?? fromVar.namespace ?? ctx.namespace,
    pod: given.workload?.pod ?? fromVar.pod ?? (env.POD_NAME?.trim() || env.HOSTNAME?.trim() || ctx.service),
  };
  const localName = localVar ?? `${serviceAccountOf(ctx)}.${workload.namespace}.serviceaccount.${identityDomain}`;
  if (!isDnsName(localName)) fail('controlPlane.linkerd', `the workload identity ${JSON.stringify(localName)} is not a DNS name`);
  const anchorsVar = set(env, 'LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS');
  const trustAnchors = given.trustAnchors ?? (anchorsVar !== undefined ? { pem: env.LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS! } : undefined);
  if (!trustAnchors) fail('controlPlane.linkerd.trustAnchors', 'is required: pass { file } or { pem } (Linkerd\'s trust anchors, PEM), or set LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS');
  const svc = (name: string) => `${name}.${ns}.serviceaccount.${identityDomain}`;
  const host = (name: string, port: number) => `${name}.${ns}.svc.${LINKERD_CLUSTER_DOMAIN}:${port}`;
  const ctxVar = set(env, 'LINKERD2_PROXY_DESTINATION_CONTEXT');
  const nodeName = env.NODE_NAME?.trim();
  return {
    namespace: ns,
    trustDomain,
    identityDomain,
    localName,
    trustAnchors,
    token: { file: given.token?.file ?? set(env, 'LINKERD2_PROXY_IDENTITY_TOKEN_FILE') ?? LINKERD_TOKEN_FILE },
    identity: serviceOf(given.identity, env, 'IDENTITY', { address: host('linkerd-identity-headless', 8080), serverName: svc('linkerd-identity') }),
    destination: serviceOf(given.destination, env, 'DESTINATION', { address: host('linkerd-dst-headless', 8086), serverName: svc('linkerd-destination') }),
    policy: serviceOf(given.policy, env, 'POLICY', { address: host('linkerd-policy', 8090), serverName: svc('linkerd-destination') }),
    workload,
    contextToken: ctxVar ?? JSON.stringify({ ns: workload.namespace, ...(nodeName && { nodeName }), pod: workload.pod }),
    workloadToken: JSON.stringify({ ns: workload.namespace, pod: workload.pod }),
  };
}
