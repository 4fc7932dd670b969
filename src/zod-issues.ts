/**
 * zod issues rewritten for a person in a hurry: what is wrong with the value that was given and
 * what would be right, one issue per mistake. Pure (reads the input and the schema, no I/O).
 *
 * - a missing value: "is required"; a wrong type: "must be a list, got the string "a:1"";
 * - a value outside an enum: the allowed values, what was given and the closest one;
 * - an unknown key: one issue per key, pointing at the key, with the closest known key;
 * - a union ("Invalid input" in zod): the branch the value was meant for, judged alone; a union of
 *   objects told apart by one key each (`identity: { dir } | { ca } | { source }`): "takes exactly
 *   one of dir, ca, source" when none or several are given.
 * Messages read after their path: `inbound.mode must be one of …` / `outbound.egres: unknown option`.
 */
import type { z } from 'zod';
import { closest, didYouMean } from './suggest.js';

type Issue = z.core.$ZodIssue;
type Schema = z.core.$ZodType;
type Path = PropertyKey[];

/** zod's own wording; anything else was written for the schema and is kept. */
const ZOD_DEFAULT = /^(Invalid (input|option|key|element)\b|Too (small|big):|Unrecognized keys?:)/;

export interface ReadableIssue {
  path: Path;
  message: string;
}

export interface ReadableOptions {
  /** What a key is called in messages: 'option' (config), 'field' (policy documents). */
  readonly noun?: string;
  /** Extra words for a missing required value at `path` (e.g. "pass { service: 'orders' }"). */
  readonly required?: (path: Path) => string | undefined;
}

/** Rewrites `issues` (from `schema.safeParse(input)`) into readable ones, duplicates removed. */
export function readableIssues(issues: readonly Issue[], input: unknown, schema: Schema, options: ReadableOptions = {}): ReadableIssue[] {
  const all = issues.flatMap((i) => rewrite(i, [], input, schema, options));
  // A misspelt key is one mistake: "unknown (did you mean address?)", not also "address is required".
  const misspelt = new Set(all.flatMap((r) => (r.suggests === undefined ? [] : [key([...r.path.slice(0, -1), r.suggests])])));
  const out: ReadableIssue[] = [];
  const seen = new Set<string>();
  for (const r of all) {
    const k = key(r.path);
    if (r.message.startsWith('is required') && misspelt.has(k)) continue;
    const id = `${k}\u0001${r.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ path: r.path, message: r.message });
  }
  return out;
}

const key = (path: Path): string => path.map(String).join('\u0000');

/** A rewritten issue; `suggests`: the known key an unknown one is closest to. */
interface Rewritten extends ReadableIssue {
  suggests?: string;
}

function rewrite(i: Issue, base: Path, input: unknown, root: Schema, o: ReadableOptions): Rewritten[] {
  const path = [...base, ...(i.path as Path)];
  const value = valueAt(input, path);
  const noun = o.noun ?? 'field';
  // A message the schema's author wrote says it better than any rewrite.
  if (!ZOD_DEFAULT.test(i.message)) return [{ path, message: i.message }];
  switch (i.code) {
    case 'unrecognized_keys': {
      const kinds = unionKinds(schemaAt(root, path));
      if (kinds && isRecord(value)) {
        const given = kinds.filter((k) => k in value);
        if (given.length !== 1) return [{ path, message: exactlyOne(kinds, given, value) }];
      }
      const known = keysOf(schemaAt(root, path));
      return i.keys.map((k) => {
        const near = closest(k, known);
        const message = `unknown ${noun}${near !== undefined ? ` (did you mean "${near}"?)` : known.length ? `; known: ${known.join(', ')}` : ''}`;
        return near === undefined ? { path: [...path, k], message } : { path: [...path, k], message, suggests: near };
      });
    }
    case 'invalid_union':
      return union(i, path, value, input, root, o);
    case 'invalid_type': {
      if (value === undefined) {
        const extra = o.required?.(path);
        return [{ path, message: `is required${extra ? `: ${extra}` : ''}` }];
      }
      return [{ path, message: `must be ${expected(i.expected, schemaAt(root, path))}, got ${describe(value)}${listHint(i.expected, value)}` }];
    }
    case 'invalid_value': {
      if (value === undefined) {
        const extra = o.required?.(path);
        return [{ path, message: `is required${extra ? `: ${extra}` : ''} (one of ${i.values.map((v) => JSON.stringify(v)).join(', ')})` }];
      }
      const allowed = i.values.map((v) => JSON.stringify(v));
      const close = typeof value === 'string' ? didYouMean(value, i.values.filter((v): v is string => typeof v === 'string')) : '';
      const head = allowed.length === 1 ? `must be ${allowed[0]}` : `must be one of ${allowed.join(', ')}`;
      return [{ path, message: `${head}, got ${describe(value)}${close}` }];
    }
    case 'invalid_key': {
      const why = i.issues.map((x) => x.message).join('; ');
      return [{ path, message: `"${String(path.at(-1))}" is not a valid name: ${why}` }];
    }
    case 'too_small':
    case 'too_big':
      return [{ path, message: bound(i, value) }];
    default:
      return [{ path, message: i.message }];
  }
}

/** A union: judge the value by the branch it was meant for, or say which branches there are. */
function union(i: z.core.$ZodIssueInvalidUnion, path: Path, value: unknown, input: unknown, root: Schema, o: ReadableOptions): Rewritten[] {
  const kinds = unionKinds(schemaAt(root, path));
  if (kinds && !isRecord(value)) return [{ path, message: `must be an object with one of ${kinds.join(', ')}, got ${describe(value)}` }];
  if (kinds && isRecord(value)) {
    const given = kinds.filter((k) => k in value);
    if (given.length !== 1) return [{ path, message: exactlyOne(kinds, given, value) }];
    const branch = i.errors[kinds.indexOf(given[0]!)];
    if (branch) return branch.flatMap((x) => rewrite(x, path, input, root, o));
  }
  // Branches that failed only because the value is of another type were not meant.
  const meant = i.errors.filter((b) => !b.every((x) => x.path.length === 0 && (x.code === 'invalid_type' || x.code === 'invalid_value')));
  if (meant.length >= 1) {
    const best = meant.reduce((a, b) => (b.length < a.length ? b : a));
    return best.flatMap((x) => rewrite(x, path, input, root, o));
  }
  const options = i.errors.flatMap((b) =>
    b.map((x) => (x.code === 'invalid_type' ? expected(x.expected, undefined) : x.code === 'invalid_value' ? x.values.map((v) => JSON.stringify(v)).join(' or ') : x.message)),
  );
  const words = i.errors.flatMap((b) => b.flatMap((x) => (x.code === 'invalid_value' ? x.values.filter((v): v is string => typeof v === 'string') : [])));
  const close = typeof value === 'string' ? didYouMean(value, words) : '';
  return [{ path, message: `must be ${[...new Set(options)].join(' or ')}, got ${describe(value)}${close}` }];
}

function exactlyOne(kinds: readonly string[], given: readonly string[], value: Record<string, unknown>): string {
  const head = `takes exactly one of ${kinds.join(', ')}`;
  if (given.length > 1) return `${head}, got ${given.join(' and ')}: keep one`;
  const typo = Object.keys(value).map((k) => didYouMean(k, kinds)).find((s) => s !== '');
  const keys = Object.keys(value);
  return `${head}, got ${keys.length ? `only ${keys.map((k) => `"${k}"`).join(', ')}` : 'an empty object'}${typo}`;
}

function bound(i: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig, value: unknown): string {
  const small = i.code === 'too_small';
  const limit = Number(small ? (i as z.core.$ZodIssueTooSmall).minimum : (i as z.core.$ZodIssueTooBig).maximum);
  const inclusive = i.inclusive !== false;
  const cmp = small ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than';
  switch (i.origin) {
    case 'array':
    case 'set':
      return `must have ${cmp} ${limit} item${limit === 1 ? '' : 's'}, got ${Array.isArray(value) ? value.length : describe(value)}`;
    case 'string':
      return `must be ${cmp} ${limit} character${limit === 1 ? '' : 's'} long, got ${describe(value)}`;
    default:
      return `must be ${cmp} ${limit}, got ${describe(value)}`;
  }
}

function expected(type: string, schema: Schema | undefined): string {
  if (type === 'array') return 'a list';
  if (type === 'object') {
    const keys = keysOf(schema);
    return keys.length ? `an object (with ${keys.join(', ')})` : 'an object';
  }
  if (type === 'int') return 'an integer';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function listHint(type: string, value: unknown): string {
  return type === 'array' && (typeof value === 'string' || typeof value === 'number') ? ` (write a list: [${JSON.stringify(value)}])` : '';
}

/** The value as a person would name it: `the string "x"`, `the number 5`, `a list`, `an object`. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `the ${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'function') return 'a function';
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return `a ${(v as object).constructor?.name ?? 'object'}`;
  return 'an object';
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function valueAt(input: unknown, path: Path): unknown {
  let v = input;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

interface Def {
  type: string;
  innerType?: Schema;
  in?: Schema;
  out?: Schema;
  shape?: Record<string, Schema>;
  valueType?: Schema;
  element?: Schema;
  options?: Schema[];
  getter?: () => Schema;
}

const defOf = (s: Schema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The schema without its wrappers (optional, default, pipe, lazy, …). */
function unwrap(s: Schema | undefined): Schema | undefined {
  for (let n = 0; s && n < 32; n++) {
    const d = defOf(s);
    if (d.innerType) s = d.innerType;
    else if (d.type === 'pipe') s = defOf(d.in!).type === 'transform' ? d.out : d.in;
    else if (d.type === 'lazy' && d.getter) s = d.getter();
    else return s;
  }
  return s;
}

/** The schema that judges the value at `path`, when it can be told. */
function schemaAt(root: Schema, path: Path): Schema | undefined {
  let s = unwrap(root);
  for (const k of path) {
    if (!s) return undefined;
    const d = defOf(s);
    if (d.type === 'object') s = d.shape?.[String(k)];
    else if (d.type === 'record') s = d.valueType;
    else if (d.type === 'array') s = d.element;
    else if (d.type === 'union') s = d.options?.map(unwrap).find((o) => o && defOf(o).type === 'object' && String(k) in (defOf(o).shape ?? {}));
    else return undefined;
    s = unwrap(s);
  }
  return s;
}

function keysOf(s: Schema | undefined): string[] {
  const u = unwrap(s);
  if (!u) return [];
  const d = defOf(u);
  if (d.type === 'object') return Object.keys(d.shape ?? {});
  if (d.type === 'union') return [...new Set((d.options ?? []).flatMap((o) => keysOf(o)))];
  return [];
}

/** For a union of objects each told apart by its first required key: those keys, in order. */
function unionKinds(s: Schema | undefined): string[] | undefined {
  const u = unwrap(s);
  if (!u || defOf(u).type !== 'union') return undefined;
  const kinds: string[] = [];
  for (const o of defOf(u).options ?? []) {
    const ou = unwrap(o);
    if (!ou || defOf(ou).type !== 'object') return undefined;
    const key = Object.entries(defOf(ou).shape ?? {}).find(([, v]) => (v as unknown as { _zod: { optin?: string } })._zod.optin !== 'optional')?.[0];
    if (key === undefined || kinds.includes(key)) return undefined;
    kinds.push(key);
  }
  return kinds.length > 1 ? kinds : undefined;
}
