/**
 * createMesh's options without zod, for the options most meshes pass (cold start, issue 14): a
 * files, token or no identity, static endpoints given as "host:port", a metric dialect, a logger. `fastConfig` judges
 * those by hand and builds exactly what config.ts's schema would output; for anything else (another
 * option, an object endpoint, a value it would refuse, any SIDECARLESS_* / SPIFFE_ENDPOINT_SOCKET
 * variable) it returns undefined, and `resolveConfig` asks config.ts, which loads zod and says what
 * is wrong in its own words. It never refuses: a refusal is config.ts's. test/config/fast.test.ts
 * holds the two to the same output.
 */
import type { MeshConfig, MeshOptionsInput } from '../config.js';
import { parseSpiffeId, parseWorkloadId, validateTrustDomain } from '../identity/spiffe-id.js';
import { parseAddress } from '../outbound/address.js';
import { configModule } from './zod.js';

type Obj = Record<string, unknown>;

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const JWT = /^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const CLUSTER_ID = /^[\x21-\x7e]+$/;
const NO = Symbol('not taken');
type Maybe<T> = T | typeof NO;

/** A plain object with only the `allowed` string keys (any key when omitted), none of them set to undefined. */
function plain(v: unknown, allowed?: readonly string[]): v is Obj {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(v).length > 0) return false;
  for (const k of Object.keys(v)) if ((allowed && !allowed.includes(k)) || (v as Obj)[k] === undefined) return false;
  return true;
}

const dnsLabel = (v: unknown): v is string => typeof v === 'string' && DNS_LABEL.test(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const address = (v: unknown): v is string => typeof v === 'string' && parseAddress(v) !== undefined;

function passes(check: (v: string) => unknown, v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    check(v);
    return true;
  } catch {
    return false;
  }
}

function identity(v: unknown): Maybe<Obj | undefined> {
  if (v === undefined) return undefined;
  return plain(v, ['dir']) && nonEmpty(v.dir) ? { dir: v.dir } : NO;
}

function controlPlane(v: unknown): Maybe<Obj | undefined> {
  if (v === undefined) return undefined;
  if (!plain(v, ['address', 'root', 'token', 'clusterId']) || !address(v.address) || !nonEmpty(v.root)) return NO;
  let token: string | Obj;
  if (nonEmpty(v.token)) token = v.token;
  else if (plain(v.token, ['file']) && nonEmpty(v.token.file) && !JWT.test(v.token.file)) token = { file: v.token.file };
  else return NO;
  if (v.clusterId !== undefined && !(typeof v.clusterId === 'string' && CLUSTER_ID.test(v.clusterId))) return NO;
  return { address: v.address, root: v.root, token, ...(v.clusterId !== undefined && { clusterId: v.clusterId }) };
}

function inbound(v: unknown): Maybe<Obj> {
  if (v === undefined) return { mode: 'strict', identityHeaders: [] };
  if (!plain(v, ['mode', 'policy'])) return NO;
  if (v.mode !== undefined && v.mode !== 'strict' && v.mode !== 'permissive') return NO;
  return { mode: v.mode ?? 'strict', ...('policy' in v && { policy: v.policy }), identityHeaders: [] };
}

function service(v: unknown): Maybe<Obj> {
  if (!plain(v, ['endpoints', 'namespace', 'identity'])) return NO;
  const list = v.endpoints === undefined ? [] : v.endpoints;
  if (!Array.isArray(list) || Object.getPrototypeOf(list) !== Array.prototype || !list.every(address)) return NO;
  if (v.namespace !== undefined && !dnsLabel(v.namespace)) return NO;
  if (v.identity !== undefined && !passes(parseWorkloadId, v.identity)) return NO;
  return {
    endpoints: list.map((a: string) => ({ address: a, weight: 1 })),
    ...(v.namespace !== undefined && { namespace: v.namespace }),
    ...(v.identity !== undefined && { identity: v.identity }),
  };
}

function outbound(v: unknown): Maybe<Obj> {
  if (v === undefined) return { egress: 'allow', connectTimeout: 10_000, services: {} };
  if (!plain(v, ['egress', 'services'])) return NO;
  if (v.egress !== undefined && v.egress !== 'allow' && v.egress !== 'deny') return NO;
  const services: Obj = {};
  if (v.services !== undefined) {
    if (!plain(v.services)) return NO;
    for (const [name, s] of Object.entries(v.services)) {
      const out = service(s);
      if (!dnsLabel(name) || out === NO) return NO;
      services[name] = out;
    }
  }
  return { egress: v.egress ?? 'allow', connectTimeout: 10_000, services };
}

function labels(v: unknown): Maybe<Record<string, string>> {
  if (v === undefined) return {};
  if (!plain(v)) return NO;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' || k === '__proto__') return NO;
    out[k] = x;
  }
  return out;
}

const DIALECTS = ['sidecarless', 'istio', 'linkerd'];
const CLUSTER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** `telemetry`: the metric dialect and Istio's cluster name (config.ts telemetrySchema). */
function telemetry(v: unknown): Maybe<Obj> {
  if (v === undefined) return { dialect: 'sidecarless', cluster: 'unknown' };
  if (!plain(v, ['dialect', 'cluster'])) return NO;
  if (v.dialect !== undefined && !DIALECTS.includes(v.dialect as string)) return NO;
  if (v.cluster !== undefined && !(typeof v.cluster === 'string' && CLUSTER.test(v.cluster))) return NO;
  return { dialect: v.dialect ?? 'sidecarless', cluster: v.cluster ?? 'unknown' };
}

/** Whether the environment could fill or change an option (config.ts's ENV, CONTROL_PLANE_ENV and the Workload API socket, and any later SIDECARLESS_*). */
function envMatters(env: NodeJS.ProcessEnv): boolean {
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '' && (k.startsWith('SIDECARLESS_') || k === 'SPIFFE_ENDPOINT_SOCKET')) return true;
  return false;
}

const TOP = ['service', 'namespace', 'trustDomain', 'spiffeId', 'identity', 'controlPlane', 'inbound', 'outbound', 'labels', 'telemetry', 'logger'];

/** What resolveConfig returns for `input`, built without zod; undefined when config.ts must judge it. */
export function fastConfig(input: unknown, env: NodeJS.ProcessEnv): MeshConfig | undefined {
  if (!plain(input, TOP) || envMatters(env) || !dnsLabel(input.service)) return undefined;
  const namespace = input.namespace === undefined ? 'default' : input.namespace;
  const trustDomain = input.trustDomain === undefined ? 'cluster.local' : input.trustDomain;
  if (!dnsLabel(namespace) || !passes(validateTrustDomain, trustDomain)) return undefined;
  if (input.spiffeId !== undefined && !passes(parseWorkloadId, input.spiffeId)) return undefined;
  const logger = input.logger;
  if (logger !== undefined && !(typeof logger === 'object' && logger !== null && typeof (logger as { warn?: unknown }).warn === 'function')) return undefined;
  const id = identity(input.identity);
  const cp = controlPlane(input.controlPlane);
  const inb = inbound(input.inbound);
  const outb = outbound(input.outbound);
  const lab = labels(input.labels);
  const tel = telemetry(input.telemetry);
  if (id === NO || cp === NO || inb === NO || outb === NO || lab === NO || tel === NO) return undefined;
  const spiffeId = (input.spiffeId as string | undefined) ?? `spiffe://${trustDomain}/ns/${namespace}/sa/${input.service}`;
  if (!sameTrustDomain(spiffeId, trustDomain)) return undefined;
  const c = {
    service: input.service,
    namespace,
    trustDomain,
    ...(input.spiffeId !== undefined && { spiffeId: input.spiffeId }),
    ...(id !== undefined && { identity: id }),
    ...(cp !== undefined && { controlPlane: cp }),
    inbound: inb,
    outbound: outb,
    labels: lab,
    telemetry: tel,
    ...(logger !== undefined && { logger }),
  };
  const defaultPolicy = inb.mode === 'permissive' ? 'all-unauthenticated' : 'all-authenticated';
  return { ...c, spiffeId, inbound: { ...inb, defaultPolicy, defaultPolicyExplicit: false } } as unknown as MeshConfig;
}

function sameTrustDomain(spiffeId: string, trustDomain: string): boolean {
  try {
    return parseSpiffeId(spiffeId).trustDomain === trustDomain;
  } catch {
    return false;
  }
}

/** Validates options (with SIDECARLESS_* environment variables for unset ones). Throws ConfigError naming each bad path. */
export function resolveConfig(input: MeshOptionsInput, env: NodeJS.ProcessEnv = process.env): MeshConfig {
  return fastConfig(input, env) ?? configModule().resolveConfig(input, env);
}
