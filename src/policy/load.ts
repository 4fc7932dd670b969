/**
 * `loadPolicy`: one entry point for every policy format. Accepts the native document, or
 * Kubernetes resources (Istio AuthorizationPolicy; Linkerd Server, AuthorizationPolicy,
 * MeshTLSAuthentication, NetworkAuthentication, HTTPRoute; Gateway API HTTPRoute) as YAML
 * (multi-document), JSON, objects, arrays or a `List`. Always returns the native form.
 */
import { PolicyError } from '../errors.js';
import type { NativeRule } from './import/native.js';
import type { K8sDoc } from './import/k8s.js';
import type { NativeServer } from './import/linkerd.js';
import { importers } from './import/zod.js';
import { at, fail, inFile, policyError } from './issues.js';
import { type Policy, parsePolicy } from './model.js';
import { locateIssues, parseText } from './yaml.js';

/** Options for {@link loadPolicy}. */
export interface LoadOptions {
  /** Istio's root namespace: policies there apply mesh-wide. Default `istio-system`. */
  readonly istioRootNamespace?: string;
  /** The file the text came from: errors then say `file:line:col` (without it, `line:col`). */
  readonly file?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Loads a policy from text (YAML or JSON, multi-document), an object, or an array of objects.
 * @throws PolicyError naming the path of every invalid or unsupported field.
 */
export function loadPolicy(input: string | object | readonly object[], options: LoadOptions = {}): Policy {
  if (typeof input !== 'string') return loadValues(Array.isArray(input) ? [...input] : [input], !Array.isArray(input), options);
  let parsed: ReturnType<typeof parseText>;
  try {
    parsed = parseText(input);
  } catch (e) {
    throw e instanceof PolicyError && options.file !== undefined ? inFile(e, options.file) : e;
  }
  try {
    return loadValues(parsed.values, true, options);
  } catch (e) {
    // Paths are known now; positions are where those paths were written.
    throw e instanceof PolicyError && e.issues.length > 0 ? locateIssues(e, parsed, options.file) : e;
  }
}

/** `raw`: the documents; `one`: a single document was given (its paths have no `[i]` in front). */
function loadValues(raw: unknown[], one: boolean, options: LoadOptions): Policy {
  const single = raw.length === 1 && one;
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
    const group = importers().groupOf(apiVersion);
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
  for (const d of istio) rules.push(...importers().importIstio(d, root));
  const imported: NativeServer[] = linkerd.length ? importers().importLinkerd(linkerd) : [];
  servers.push(...imported);
  return parsePolicy({ rules: rules as NativeRule[], servers });
}
