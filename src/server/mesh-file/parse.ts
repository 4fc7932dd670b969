/**
 * `parseMeshFile`: mesh-file text (+ its policy files, through a reader) → one validated,
 * immutable MeshModel, or MeshFileError listing every issue with its file and line. The file is
 * taken whole or not at all. Pure (no I/O: policy files come through `readPolicy`).
 *
 * Checked, in order: YAML syntax; the schema (strict: unknown keys are refused with the closest
 * known key); references (a service declared twice, a split or route naming an undeclared
 * service); each service as createMesh would type it; the policy files (readable, not empty,
 * accepted by loadPolicy); and finally whether the outbound generator can serve every service
 * exactly, so that a file accepted here never fails later when it is turned into xDS resources.
 */
import { createHash } from 'node:crypto';
import { ConfigError, PolicyError } from '../../errors.js';
import { type ParsedText, parseText } from '../../policy/yaml.js';
import { formatPath } from '../../policy/issues.js';
import { readableIssues } from '../../zod-issues.js';
import { serviceFromConfig } from '../../control-plane/from-options.js';
import { generateOutboundResources, XdsGenerateError } from '../xds/outbound-resources.js';
import { MeshFileError } from './errors.js';
import { Issues } from './issues.js';
import { type MeshModel, type MeshServiceModel, meshModel } from './model.js';
import { loadPolicies, type PolicySource } from './policies.js';
import { checkRefs } from './refs.js';
import { type MeshFileConfig, meshFileSchema, type MeshServiceConfig } from './schema.js';

export interface ParseMeshFileOptions {
  /** How messages name the mesh file (its path). */
  readonly file: string;
  /** The text of a policy file, by its path relative to the mesh file; throws (ENOENT, EACCES, …) when it cannot be read. */
  readonly readPolicy: (relPath: string) => string;
  /** How messages name a policy file (default: as the mesh file writes it). */
  readonly policyFileName?: (relPath: string) => string;
  /** Istio's root namespace for AuthorizationPolicies (default istio-system). */
  readonly istioRootNamespace?: string;
}

function isEmptyDocument(text: string): boolean {
  return text.split(/\r?\n/).every((l) => {
    const t = l.trim();
    return t === '' || t.startsWith('#') || t === '---' || t === '...';
  });
}

/** YAML text → the one document's value, or issues (syntax errors at their line and column). */
function parseYaml(text: string, file: string): { value: unknown; parsed: ParsedText } | MeshFileError {
  if (isEmptyDocument(text)) {
    return new MeshFileError(file, [{ file, line: 1, column: 1, path: '(root)', message: 'is empty (no YAML content); write "services: []" for a mesh without services' }]);
  }
  let parsed: ParsedText;
  try {
    parsed = parseText(text);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    return new MeshFileError(file, e.issues.map((i) => ({ file, line: i.line ?? 1, column: i.column ?? 1, path: '(root)', message: i.message.replace('not valid YAML/JSON', 'not valid YAML') })));
  }
  if (parsed.values.length !== 1) {
    return new MeshFileError(file, [{ file, line: 1, column: 1, path: '(root)', message: `holds ${parsed.values.length} YAML documents: a mesh file is one document` }]);
  }
  return { value: parsed.values[0], parsed };
}

function checkSchema(value: unknown, is: Issues): MeshFileConfig | undefined {
  const r = meshFileSchema.safeParse(value);
  if (r.success) return r.data;
  for (const i of readableIssues(r.error.issues, value, meshFileSchema, { noun: 'field' })) {
    let message = i.message;
    if (/^services\[\d+\]\.endpoints\[\d+\]$/.test(formatPath(i.path)) && message.startsWith('must be an object')) {
      message = 'must be "host:port" or { address: "host:port", identity?, weight?, zone?, labels? }';
    }
    is.add(formatPath(i.path), message, message.startsWith('unknown field'));
  }
  return undefined;
}

/** A service as createMesh types it (defaults, identities, settings objects). */
function serviceOf(s: MeshServiceConfig, i: number, trustDomain: string, is: Issues): MeshServiceModel | undefined {
  const { name, namespace, port, protocol, ...traffic } = s;
  let spec;
  try {
    spec = serviceFromConfig(name, { ...traffic, namespace, protocol }, { trustDomain, namespace }, `services[${i}]`);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const x of e.issues) is.add(x.path, x.message);
    return undefined;
  }
  return Object.freeze({
    name,
    namespace,
    key: `${name}.${namespace}`,
    port,
    protocol,
    identity: spec.identity,
    endpoints: spec.endpoints ?? [],
    ...(spec.split && { split: spec.split }),
    spec,
  });
}

/** The generator's field (`settings.accrual.minMs`, `routes[1].policy.retry`) → the mesh file's key. */
function fieldPath(field: string): string {
  if (field === 'default' || field === 'identities') return '';
  const m = /^settings\.(\w+)/.exec(field);
  if (m) return `.${m[1] === 'accrual' ? 'failureAccrual' : m[1]}`;
  return `.${field.replace(/^(routes\[\d+\])\.policy.*$/, '$1')}`;
}

/** Whether every service can be served as xDS resources exactly (the generator refuses, e.g., a host-name endpoint or an RE2-incompatible regex). */
function checkGenerates(services: readonly MeshServiceModel[], is: Issues): void {
  try {
    generateOutboundResources(services.map((s) => ({ spec: s.spec, port: s.port })));
  } catch (e) {
    if (!(e instanceof XdsGenerateError)) throw e;
    const i = services.findIndex((s) => s.key === e.service);
    const prefix = `service ${JSON.stringify(e.service)} ${e.field}: `;
    const body = e.message.startsWith(prefix) ? e.message.slice(prefix.length).replace(/; nothing was generated: .*$/, '') : e.message;
    is.add(i < 0 ? 'services' : `services[${i}]${fieldPath(e.field)}`, `cannot be served over xDS exactly: ${body}`);
  }
}

function versionOf(text: string, policies: ReadonlyArray<readonly [string, string]>): string {
  const h = createHash('sha256').update(text);
  for (const [rel, t] of policies) h.update(`\0${rel}\0${t}`);
  return h.digest('hex').slice(0, 16);
}

/** @throws MeshFileError with every issue of the file and of its policy files. */
export function parseMeshFile(text: string, o: ParseMeshFileOptions): MeshModel {
  const y = parseYaml(text, o.file);
  if (y instanceof MeshFileError) throw y;
  const is = new Issues(o.file, y.parsed);
  const cfg = checkSchema(y.value, is);
  if (!cfg) throw new MeshFileError(o.file, is.list);
  const name = o.policyFileName ?? ((rel: string) => rel);
  const policyFiles = cfg.policies.map((p) => name(p.file));
  checkRefs(cfg, is);
  const services = is.empty ? cfg.services.map((s, i) => serviceOf(s, i, cfg.trustDomain, is)) : [];
  const src: PolicySource = { read: o.readPolicy, name, trustDomain: cfg.trustDomain, ...(o.istioRootNamespace !== undefined && { istioRootNamespace: o.istioRootNamespace }) };
  const policies = loadPolicies(cfg.policies, src, is);
  const typed = services.filter((s): s is MeshServiceModel => s !== undefined);
  if (is.empty) checkGenerates(typed, is);
  if (!is.empty) throw new MeshFileError(o.file, is.list, policyFiles);
  const tokenIssuers = cfg.tokenIssuers.map((i) => ({ ...i, jwksFile: name(i.jwksFile) }));
  return meshModel({ version: versionOf(text, policies.texts), file: o.file, trustDomain: cfg.trustDomain, services: typed, policy: policies.policy, policyFiles, tokenIssuers });
}
