/**
 * The policy engine: pure, no I/O. Load (native, Istio, Linkerd) → compile for one workload →
 * evaluate each request; normalize the request target first.
 *
 * ```ts
 * const compiled = compilePolicy(loadPolicy(yamlText), { trustDomain: 'cluster.local', namespace: 'default' });
 * const t = normalizeTarget(req.url, req.method);           // 400 when !t.ok
 * const d = compiled.evaluate({ peer, sourceIp, method, path: t.path, host, port, header });
 * if (!d.allowed) { 403 }
 * ```
 */
export { loadPolicy, type LoadOptions } from './load.js';
export { compilePolicy, type CompiledPolicy } from './compile.js';
export { normalizeTarget, normalizePath, type NormalizedTarget } from './normalize.js';
export {
  parsePolicy,
  DEFAULT_POLICIES,
  type Policy,
  type PolicyInput,
  type Rule,
  type RuleAction,
  type Server,
  type ServerRoute,
  type Source,
  type Operation,
  type Condition,
  type LabelSelector,
  type DefaultPolicy,
  type PolicyRequest,
  type Decision,
  type CompileOptions,
} from './model.js';
export { formatIssue, type PolicyIssue } from './issues.js';
