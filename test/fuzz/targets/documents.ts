// The document parsers a user or a control plane feeds the mesh: policy documents (native, Istio,
// Linkerd — loadPolicy) and the embedded control plane's mesh file (parseMeshFile). Inputs are
// real documents (the fixtures) mutated line- and character-wise, and generated Kubernetes-shaped
// resources with hostile values. Oracles: only our error class (PolicyError, MeshFileError) ever
// escapes; a policy given as an object and as the YAML text of that object loads the same (a round
// trip through the YAML reader); a loaded policy compiles and judges a request without throwing.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { PolicyError } from '../../../src/errors.js';
import { compilePolicy, loadPolicy } from '../../../src/policy/index.js';
import { MeshFileError, parseMeshFile } from '../../../src/server/mesh-file/index.js';
import { type FuzzTarget, onlyThrows } from '../harness.js';

const FIXTURES = new URL('../../fixtures/', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(FIXTURES, p), 'utf8');

/** Line and character edits of a text. */
const EDIT = fc.oneof(
  fc.record({ k: fc.constant('drop' as const), line: fc.nat() }),
  fc.record({ k: fc.constant('dup' as const), line: fc.nat() }),
  fc.record({ k: fc.constant('char' as const), at: fc.nat(), ch: fc.constantFrom(':', '-', ' ', '\t', '{', '}', '[', ']', '"', "'", '*', '&', '!', '#', '\n', '0', 'x', '/', '.', '\u0000', '%') }),
  fc.record({ k: fc.constant('indent' as const), line: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
);
type Edit = typeof EDIT extends fc.Arbitrary<infer E> ? E : never;

function edited(text: string, edits: readonly Edit[]): string {
  let t = text;
  for (const e of edits) {
    const lines = t.split('\n');
    if (e.k === 'char') {
      const at = t.length === 0 ? 0 : e.at % t.length;
      t = t.slice(0, at) + e.ch + t.slice(at + 1);
      continue;
    }
    const i = lines.length === 0 ? 0 : e.line % lines.length;
    if (e.k === 'drop') lines.splice(i, 1);
    else if (e.k === 'dup') lines.splice(i, 0, lines[i] ?? '');
    else lines[i] = e.by >= 0 ? ' '.repeat(e.by) + (lines[i] ?? '') : (lines[i] ?? '').slice(-e.by);
    t = lines.join('\n');
  }
  return t;
}

const VALUE: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('', '*', '/admin', '/a*', '*.example', 'GET', 'spiffe://cluster.local/ns/a/sa/b', 'cluster.local/ns/a/sa/b', '10.0.0.0/8', '::1/128', 'default', 'ALLOW', 'DENY', 'AUDIT', 'CUSTOM', 'Exact', 'PathPrefix', 'RegularExpression', '8443', 'http', 'x'.repeat(300)),
    fc.integer({ min: -1, max: 70000 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('name', 'namespace', 'paths', 'methods', 'hosts', 'ports', 'principals', 'namespaces', 'ipBlocks', 'notPaths', 'from', 'to', 'when', 'key', 'values', 'matchLabels', 'port', 'kind', 'group', 'identities', 'path', 'type', 'value', 'method', 'targetRef', 'requiredAuthenticationRefs'), tie('v'), { maxKeys: 4 }),
  ),
})).v;

const RESOURCE = fc.oneof(
  fc.record({ apiVersion: fc.constantFrom('security.istio.io/v1', 'security.istio.io/v1beta1'), kind: fc.constant('AuthorizationPolicy'), metadata: fc.record({ name: fc.constantFrom('p', 'q'), namespace: fc.constantFrom('default', 'istio-system', '') }), spec: fc.record({ action: VALUE, rules: fc.array(fc.record({ from: VALUE, to: VALUE, when: VALUE }, { requiredKeys: [] }), { maxLength: 3 }), selector: VALUE }, { requiredKeys: [] }) }),
  fc.record({ apiVersion: fc.constantFrom('policy.linkerd.io/v1beta3', 'policy.linkerd.io/v1alpha1', 'gateway.networking.k8s.io/v1'), kind: fc.constantFrom('Server', 'AuthorizationPolicy', 'MeshTLSAuthentication', 'NetworkAuthentication', 'HTTPRoute'), metadata: fc.record({ name: fc.constantFrom('s', 'r'), namespace: fc.constant('default') }), spec: VALUE }),
  fc.record({ rules: fc.array(fc.record({ name: VALUE, action: VALUE, from: VALUE, to: VALUE }, { requiredKeys: [] }), { maxLength: 3 }) }, { requiredKeys: [] }),
);

const request = { peer: { id: 'spiffe://cluster.local/ns/default/sa/web', kind: 'spiffe' as const, spiffeId: 'spiffe://cluster.local/ns/default/sa/web', trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'web' }, sourceIp: '127.0.0.1', method: 'GET', path: '/admin', host: 'payments', port: 8443, header: () => undefined };

/** Loads, compiles and judges; returns the loaded policy or the PolicyError (anything else escapes). */
function load(input: string | object): unknown {
  let out: unknown;
  const err = onlyThrows([PolicyError], () => {
    const p = loadPolicy(input as never);
    compilePolicy(p, { trustDomain: 'cluster.local', namespace: 'default', labels: { app: 'payments' } }).evaluate(request);
    out = p;
  });
  return err ?? out;
}

export const policyDocuments: FuzzTarget = {
  name: 'policy-documents',
  oracle: 'loadPolicy + compile + evaluate throw only PolicyError; an object and its YAML text load the same',
  shortRuns: 400,
  property: () => {
    const texts = [read('policy/linkerd-booksapp.yaml'), ...readdirSync(join(FIXTURES, 'mesh-files/policies')).map((f) => read(`mesh-files/policies/${f}`))];
    return fc.property(fc.oneof(
      fc.tuple(fc.constantFrom(...texts), fc.array(EDIT, { maxLength: 4 })).map(([t, e]) => ({ text: edited(t, e) })),
      fc.array(RESOURCE, { minLength: 1, maxLength: 3 }).map((docs) => ({ docs })),
    ), (input) => {
      if ('text' in input) {
        load(input.text);
        return true;
      }
      const fromObject = load(input.docs);
      const fromYaml = load(input.docs.map((d) => stringify(d)).join('---\n'));
      const same = fromObject instanceof PolicyError ? fromYaml instanceof PolicyError : JSON.stringify(fromObject) === JSON.stringify(fromYaml);
      if (!same) throw new Error(`the object and its YAML load differently: ${fromObject instanceof Error ? fromObject.message : 'loaded'} / ${fromYaml instanceof Error ? fromYaml.message : 'loaded'}`);
      return true;
    });
  },
};

export const meshFile: FuzzTarget = {
  name: 'mesh-file',
  oracle: 'parseMeshFile throws only MeshFileError, for mutated real mesh files (policy files mutated too)',
  shortRuns: 300,
  property: () => {
    const valid = read('mesh-files/valid.yaml');
    const policies = new Map(readdirSync(join(FIXTURES, 'mesh-files/policies')).map((f) => [`policies/${f}`, read(`mesh-files/policies/${f}`)]));
    return fc.property(fc.array(EDIT, { minLength: 1, maxLength: 5 }), fc.array(EDIT, { maxLength: 3 }), (edits, policyEdits) => {
      const readPolicy = (rel: string) => {
        const t = policies.get(rel);
        if (t === undefined) throw Object.assign(new Error(`ENOENT: ${rel}`), { code: 'ENOENT' });
        return edited(t, policyEdits);
      };
      onlyThrows([MeshFileError], () => parseMeshFile(edited(valid, edits), { file: 'mesh.yaml', readPolicy }));
      return true;
    });
  },
};
