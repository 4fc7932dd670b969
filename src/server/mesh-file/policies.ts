/**
 * The policy files a mesh file names, each loaded exactly as loadPolicy loads it (Istio
 * AuthorizationPolicy, Linkerd policy resources, native rules), then merged into one Policy.
 * A file that cannot be read, is empty, or that an importer refuses is an issue naming that file
 * and line (and the mesh-file line that names it). Pure: reading goes through `read`.
 */
import { PolicyError } from '../../errors.js';
import { loadPolicy, type Policy } from '../../policy/index.js';
import { parsePolicy } from '../../policy/model.js';
import type { Rule, Server } from '../../policy/model.js';
import { InboundRenderError, renderRbac } from '../xds/rbac-render.js';
import type { Issues } from './issues.js';

export interface PolicySource {
  /** The text of the policy file at `relPath` (relative to the mesh file); throws when it cannot be read. */
  readonly read: (relPath: string) => string;
  /** How messages name that file (default: `relPath`). */
  readonly name: (relPath: string) => string;
  readonly istioRootNamespace?: string;
  /** The mesh's trust domain (what native `serviceAccounts` means in RBAC). */
  readonly trustDomain: string;
}

export interface LoadedPolicies {
  readonly policy: Policy;
  /** `relPath` + text of each file read, in order (for the version). */
  readonly texts: ReadonlyArray<readonly [string, string]>;
}

/** Only whitespace, comments and document markers: a writer caught between truncating and writing. */
function isEmptyDocument(text: string): boolean {
  return text.split(/\r?\n/).every((l) => {
    const t = l.trim();
    return t === '' || t.startsWith('#') || t === '---' || t === '...';
  });
}

function readError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return 'it does not exist (the path is relative to the mesh file)';
  if (err.code === 'EACCES' || err.code === 'EPERM') return 'permission denied';
  if (err.code === 'EISDIR') return 'it is a directory: name the policy file in it';
  return `${err.message ?? String(e)}${err.code ? ` (${err.code})` : ''}`;
}

function loadOne(rel: string, at: string, src: PolicySource, is: Issues): { policy: Policy; text: string } | undefined {
  const file = src.name(rel);
  let text: string;
  try {
    text = src.read(rel);
  } catch (e) {
    is.add(at, `cannot read the policy file ${file}: ${readError(e)}; create it, or fix or remove this entry`);
    return undefined;
  }
  if (isEmptyDocument(text)) {
    is.push({ file, line: 1, column: 1, path: '(root)', message: `is empty (named at ${is.where(at)}); write "rules: []" for a policy without rules` });
    return undefined;
  }
  try {
    const policy = loadPolicy(text, { file, ...(src.istioRootNamespace !== undefined && { istioRootNamespace: src.istioRootNamespace }) });
    const before = is.list.length;
    checkRenderable(policy, file, text, src.trustDomain, at, is);
    return is.list.length === before ? { policy, text } : undefined;
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    const named = ` (policy file named at ${is.where(at)})`;
    const issues = e.issues.length > 0 ? e.issues : [{ path: '(root)', message: e.message }];
    is.push(...issues.map((i) => ({ file, line: i.line ?? 1, column: i.column ?? 1, path: i.path, message: `${i.message}${named}` })));
    return undefined;
  }
}

/** The line where a rule's name (or its Kubernetes resource's, `ns/name#0` → `name`) is written; 1 when it is not. */
function lineOfName(text: string, rule: string): number {
  const base = rule.replace(/^.*\//, '').replace(/#\d+$/, '');
  const lines = text.split('\n');
  for (const want of [rule, base]) {
    const i = lines.findIndex((l) => new RegExp(`\\bname:\\s*["']?${want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?\\s*([,}#]|$)`).test(l));
    if (i >= 0) return i + 1;
  }
  return 1;
}

/**
 * Rules the embedded control plane could not serve as RBAC (trust domains, SNI, path templates,
 * …): refused now, with the file, rather than when a workload they select connects. Each rule is
 * judged wherever it applies (its namespace and selector set aside); so is each Linkerd server
 * section, on its own ports (ranked routes RBAC cannot tell apart, fields without an RBAC form).
 */
function checkRenderable(policy: Policy, file: string, text: string, trustDomain: string, at: string, is: Issues): void {
  const report = (e: unknown, where: (path: string) => { path: string; line: number }) => {
    if (!(e instanceof InboundRenderError)) throw e;
    for (const i of e.issues) {
      const w = where(i.path);
      is.push({ file, line: w.line, column: 1, path: w.path, message: `cannot be served as the inbound Listener's RBAC: ${i.message} (policy file named at ${is.where(at)})` });
    }
  };
  for (const r of policy.rules) {
    const { namespace: _n, selector: _s, ...anywhere } = r;
    try {
      renderRbac({ rules: [anywhere], servers: [] }, { trustDomain });
    } catch (e) {
      report(e, (path) => ({ path: path.replace(/^rules\[0\] /, 'rule '), line: lineOfName(text, r.name) }));
    }
  }
  for (const s of policy.servers) {
    const { namespace: _n, selector: _s, ...anywhere } = s;
    try {
      renderRbac({ rules: [], servers: [anywhere] }, { trustDomain, port: s.ports[0]! });
    } catch (e) {
      report(e, (path) => ({ path: path.replace(/^servers\[0\] /, 'server '), line: lineOfName(text, serverPart(s, path)) }));
    }
  }
}

/** The name an issue of a server section is about: its rule's, its route's (the HTTPRoute), or the server's. */
function serverPart(s: Server, path: string): string {
  const rule = /\.rules\[(\d+)\]/.exec(path);
  if (rule) return s.rules[Number(rule[1])]?.name ?? s.name;
  const route = /\.routes\[(\d+)\]/.exec(path);
  if (route) return s.routes[Number(route[1])]?.route ?? s.name;
  return s.name;
}

/** A name taken by an earlier file gets the file in front: `policies/b.yaml:rule-0` (two native files both have `rule-0`). */
function unique<T extends { name: string }>(items: readonly T[], rel: string, taken: Set<string>): T[] {
  return items.map((x) => {
    let name = taken.has(x.name) ? `${rel}:${x.name}` : x.name;
    for (let n = 2; taken.has(name); n++) name = `${rel}:${x.name}#${n}`;
    taken.add(name);
    return name === x.name ? x : { ...x, name };
  });
}

export function loadPolicies(refs: ReadonlyArray<{ file: string }>, src: PolicySource, is: Issues): LoadedPolicies {
  const rules: Rule[] = [];
  const servers: Server[] = [];
  const ruleNames = new Set<string>();
  const serverNames = new Set<string>();
  const texts: Array<[string, string]> = [];
  const listed = new Map<string, number>();
  refs.forEach((ref, i) => {
    const prev = listed.get(src.name(ref.file));
    if (prev !== undefined) return is.add(`policies[${i}].file`, `${ref.file} is listed twice (first at ${is.where(`policies[${prev}].file`)}): list each policy file once`);
    listed.set(src.name(ref.file), i);
    const loaded = loadOne(ref.file, `policies[${i}].file`, src, is);
    if (!loaded) return;
    texts.push([ref.file, loaded.text]);
    rules.push(...unique(loaded.policy.rules, ref.file, ruleNames));
    servers.push(...unique(loaded.policy.servers, ref.file, serverNames));
  });
  if (!is.empty) return { policy: { rules: [], servers: [] }, texts };
  try {
    return { policy: parsePolicy({ rules, servers }), texts };
  } catch (e) {
    // Each file was valid alone: what is left is between files.
    if (!(e instanceof PolicyError)) throw e;
    for (const i of e.issues) is.add('policies', `the policy files together are refused: ${i.path}: ${i.message}`);
    return { policy: { rules: [], servers: [] }, texts };
  }
}
