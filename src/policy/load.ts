/**
 * `loadPolicy`: one entry point for every policy format. Accepts the native document, or
 * Kubernetes resources (Istio AuthorizationPolicy; Linkerd Server, AuthorizationPolicy,
 * MeshTLSAuthentication, NetworkAuthentication, HTTPRoute; Gateway API HTTPRoute) as YAML
 * (multi-document), JSON, objects, arrays or a `List`. Always returns the native form.
 */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { importIstio, type NativeRule } from './import/istio.js';
import { groupOf, type K8sDoc } from './import/k8s.js';
import { importLinkerd, type NativeServer } from './import/linkerd.js';
import { at, fail, policyError } from './issues.js';
import { type Policy, parsePolicy } from './model.js';

/** Options for {@link loadPolicy}. */
export interface LoadOptions {
  /** Istio's root namespace: policies there apply mesh-wide. Default `istio-system`. */
  readonly istioRootNamespace?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

let yaml: typeof Yaml | undefined;

/**
 * The yaml package (~9 MB, ~25 ms to import) is loaded only when a policy arrives as text.
 * loadPolicy is synchronous, so through require (works in the ESM and the CJS build alike).
 */
function loadYaml(): typeof Yaml {
  return (yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml);
}

function parseText(text: string): unknown[] {
  const docs = loadYaml().parseAllDocuments(text, { prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  list.forEach((d, i) => {
    if (d.errors.length) {
      throw policyError(d.errors.map((e) => ({ path: `[${i}]`, message: `not valid YAML/JSON: ${e.message.split('\n')[0]}` })));
    }
    const v = d.toJS({ maxAliasCount: 100 }) as unknown;
    if (v !== null && v !== undefined) out.push(v);
  });
  return out;
}

/**
 * Loads a policy from text (YAML or JSON, multi-document), an object, or an array of objects.
 * @throws PolicyError naming the path of every invalid or unsupported field.
 */
export function loadPolicy(input: string | object | readonly object[], options: LoadOptions = {}): Policy {
  const raw: unknown[] = typeof input === 'string' ? parseText(input) : Array.isArray(input) ? [...input] : [input];
  const single = raw.length === 1 && !Array.isArray(input);
  // Expand `kind: List` documents.
  const docs: Array<{ path: string; value: unknown }> = [];
  raw.forEach((v, i) => {
    const path = single ? '' : `[${i}]`;
    if (isObject(v) && v.kind === 'List' && Array.isArray(v.items)) {
      v.items.forEach((item, j) => docs.push({ path: at(at(path, 'items'), j), value: item }));
    } else docs.push({ path, value: v });
  });
  const native: unknown[] = [];
  const istio: K8sDoc[] = [];
  const linkerd: K8sDoc[] = [];
  for (const { path, value } of docs) {
    if (!isObject(value)) fail(path || '(root)', 'expected a policy document (an object)');
    const apiVersion = value.apiVersion;
    if (apiVersion === undefined || apiVersion === 'sidecarless.dev/v1') {
      native.push({ path, value });
      continue;
    }
    if (typeof apiVersion !== 'string') fail(at(path, 'apiVersion'), 'must be a string');
    const kind = typeof value.kind === 'string' ? value.kind : fail(at(path, 'kind'), 'must be a string');
    const meta = isObject(value.metadata) ? value.metadata : fail(at(path, 'metadata'), 'required (with a name)');
    const name = typeof meta.name === 'string' && meta.name ? meta.name : fail(at(at(path, 'metadata'), 'name'), 'required');
    const namespace = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : undefined;
    const d: K8sDoc = { path, apiVersion, kind, name, namespace, body: value };
    const group = groupOf(apiVersion);
    if (group === 'security.istio.io') {
      if (kind !== 'AuthorizationPolicy') {
        fail(at(path, 'kind'), `${kind} is not an authorization policy (PeerAuthentication maps to inbound.mode; RequestAuthentication/JWT is not supported)`);
      }
      istio.push(d);
    } else if (group === 'policy.linkerd.io' || (group === 'gateway.networking.k8s.io' && kind === 'HTTPRoute')) {
      linkerd.push(d);
    } else {
      fail(at(path, 'apiVersion'), `${apiVersion} ${kind} is not a supported policy resource (native sidecarless.dev/v1, security.istio.io, policy.linkerd.io, gateway.networking.k8s.io HTTPRoute)`);
    }
  }
  const rules: unknown[] = [];
  const servers: unknown[] = [];
  for (const n of native as Array<{ path: string; value: Record<string, unknown> }>) {
    // Validate each native document on its own so error paths point into it.
    try {
      parsePolicy(n.value);
    } catch (e) {
      if (n.path === '') throw e;
      const pe = e as { issues: ReadonlyArray<{ path: string; message: string }> };
      throw policyError(pe.issues.map((i) => ({ path: i.path === '(root)' ? n.path : `${n.path}.${i.path}`.replace('.[', '['), message: i.message })));
    }
    const { rules: r, servers: s } = n.value;
    if (Array.isArray(r)) rules.push(...r);
    if (Array.isArray(s)) servers.push(...s);
  }
  const root = options.istioRootNamespace ?? 'istio-system';
  for (const d of istio) rules.push(...importIstio(d, root));
  const imported: NativeServer[] = linkerd.length ? importLinkerd(linkerd) : [];
  servers.push(...imported);
  return parsePolicy({ rules: rules as NativeRule[], servers });
}
