/**
 * Policy text (YAML or JSON, multi-document) → values, keeping where each node was written, so an
 * error names the line and column of the field it is about. Pure (no I/O).
 */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { type PolicyError } from '../errors.js';
import { type PolicyIssue, policyError } from './issues.js';

let yaml: typeof Yaml | undefined;

/**
 * The yaml package (~9 MB, ~25 ms to import) is loaded only when a policy arrives as text.
 * loadPolicy is synchronous, so through require (works in the ESM and the CJS build alike).
 */
function loadYaml(): typeof Yaml {
  return (yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml);
}

export interface Position {
  /** 1-based. */
  readonly line: number;
  readonly column: number;
}

export interface ParsedText {
  /** The values of the documents that are not empty, in order. */
  readonly values: unknown[];
  /**
   * Where the field at `path` (as PolicyIssue writes it: `[1].rules[0].from`, with the document
   * index first when there are several) was written, or its nearest written ancestor.
   */
  locate(path: string, preferKey?: boolean): Position | undefined;
}

/**
 * Parses `text`. A syntax error throws PolicyError with one issue per broken document (its first
 * error: the ones after it are mostly consequences of it), at its line and column.
 */
export function parseText(text: string): ParsedText {
  const Y = loadYaml();
  const lineCounter = new Y.LineCounter();
  const parsed = Y.parseAllDocuments(text, { prettyErrors: false, lineCounter });
  const all = Array.isArray(parsed) ? parsed : [parsed as unknown as Yaml.Document.Parsed];
  const at = (offset: number): Position => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const docs: Yaml.Document.Parsed[] = [];
  const values: unknown[] = [];
  const broken: Array<{ index: number; message: string; pos: Position }> = [];
  all.forEach((d, index) => {
    const first = d.errors[0];
    if (first) {
      broken.push({ index, message: first.message.split('\n')[0]!, pos: at(first.pos[0]) });
      return;
    }
    let v: unknown;
    try {
      v = d.toJS({ maxAliasCount: 100 }) as unknown;
    } catch (e) {
      // Unresolved alias, alias bomb: toJS throws rather than reporting.
      broken.push({ index, message: (e as Error).message.split('\n')[0]!, pos: at(aliasOffset(Y, d) ?? d.range[0]) });
      return;
    }
    if (v !== null && v !== undefined) {
      docs.push(d);
      values.push(v);
    }
  });
  if (broken.length) {
    const many = all.length > 1;
    throw policyError(broken.map((b) => ({ path: many ? `[${b.index}]` : '(root)', message: `not valid YAML/JSON: ${b.message}`, ...b.pos })));
  }
  return {
    values,
    locate(path, preferKey = false) {
      const tokens = tokenize(path);
      let doc: Yaml.Document.Parsed | undefined = docs[0];
      if (docs.length !== 1) {
        const first = tokens.shift();
        doc = typeof first === 'number' ? docs[first] : undefined;
      }
      if (!doc) return undefined;
      const offset = offsetOf(Y, doc, tokens, preferKey);
      return offset === undefined ? undefined : at(offset);
    },
  };
}

/** Gives every issue of `err` the position of its path in `text` (and `file`), as one new PolicyError. */
export function locateIssues(err: PolicyError, parsed: ParsedText, file?: string): PolicyError {
  const issues: PolicyIssue[] = err.issues.map((i) => {
    const pos = i.line === undefined ? parsed.locate(i.path, i.message.startsWith('unknown field')) : undefined;
    return { ...i, ...pos, ...(file !== undefined && { file }) };
  });
  return policyError(issues, file === undefined ? 'invalid policy' : `invalid policy in ${file}`);
}

/** `[1].spec.rules[0].from` → [1, 'spec', 'rules', 0, 'from']. */
function tokenize(path: string): Array<string | number> {
  if (path === '' || path === '(root)') return [];
  const out: Array<string | number> = [];
  for (const m of path.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) out.push(m[1] !== undefined ? Number(m[1]) : m[2]!);
  return out;
}

type YNode = Yaml.Node | Yaml.Pair | null | undefined | unknown;

/**
 * The offset where the node at `tokens` starts, or its deepest ancestor that exists. A key may
 * itself hold dots (`app.kubernetes.io/name`): tokens are joined until a key matches.
 */
function offsetOf(Y: typeof Yaml, doc: Yaml.Document.Parsed, tokens: ReadonlyArray<string | number>, preferKey: boolean): number | undefined {
  let node: YNode = doc.contents;
  let offset = rangeStart(Y, node) ?? doc.range[0];
  for (let i = 0; i < tokens.length; ) {
    if (Y.isAlias(node)) node = node.resolve(doc);
    const t = tokens[i]!;
    if (Y.isSeq(node) && typeof t === 'number') {
      node = node.items[t];
      const s = rangeStart(Y, node);
      if (s === undefined) return offset;
      offset = s;
      i++;
      continue;
    }
    if (!Y.isMap(node) || typeof t !== 'string') return offset;
    let pair: Yaml.Pair | undefined;
    let used = 0;
    for (let j = i, key = ''; j < tokens.length && typeof tokens[j] === 'string' && !pair; j++) {
      key = j === i ? t : `${key}.${String(tokens[j])}`;
      pair = node.items.find((p) => keyOf(Y, p.key) === key) as Yaml.Pair | undefined;
      used = j - i + 1;
    }
    if (!pair) return offset;
    i += used;
    const keyStart = rangeStart(Y, pair.key);
    const valueStart = rangeStart(Y, pair.value);
    offset = (i === tokens.length && preferKey) || valueStart === undefined ? (keyStart ?? offset) : valueStart;
    node = pair.value;
  }
  return offset;
}

function keyOf(Y: typeof Yaml, key: unknown): string {
  return Y.isScalar(key) ? String(key.value) : String(key);
}

function rangeStart(Y: typeof Yaml, node: YNode): number | undefined {
  if (Y.isNode(node) && node.range) return node.range[0];
  return undefined;
}

/** The offset of the first alias in `doc` whose anchor does not exist. */
function aliasOffset(Y: typeof Yaml, doc: Yaml.Document.Parsed): number | undefined {
  let found: number | undefined;
  Y.visit(doc, {
    Alias(_key, node) {
      if (found === undefined && node.range && !node.resolve(doc)) {
        found = node.range[0];
        return Y.visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}
