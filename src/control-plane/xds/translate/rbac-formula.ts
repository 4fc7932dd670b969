/**
 * The boolean algebra between an RBAC tree (and/or/not/any over matchers) and the native policy
 * model (a rule matches when any `from` AND any `to` AND every `when` holds; within a clause every
 * field holds; a field holds when any of its values matches, a `not*` field when none does).
 *
 * An RBAC Policy is read as a formula over atoms; `dnf` pushes negations down to the atoms and
 * distributes AND over OR, giving clauses (AND of parts) joined by OR — what native rules hold.
 * An atom the native model cannot state exactly carries two forms: `under` (matches no request
 * Envoy's matcher would not) and `over` (misses none it would). `dnf` picks, per atom and per
 * polarity, the form that keeps the whole formula on the safe side: never more than Envoy for an
 * ALLOW policy (`bound: 'under'`), never less for a DENY policy (`bound: 'over'`). Exact atoms
 * have one form. Pure.
 */
import type { Condition } from '../../../policy/index.js';

/** One field of a native clause with its values: positive (any matches) or a `not*` field (none matches). */
export type Part =
  | { readonly kind: 'field'; readonly field: ListField; readonly negated: boolean; readonly values: readonly (string | number)[] }
  | { readonly kind: 'header'; readonly name: string; readonly negated: boolean; readonly values: readonly string[] }
  | { readonly kind: 'authenticated'; readonly value: boolean };

/** Native fields that come in positive/negated pairs (`identities` / `notIdentities`, …). */
export type ListField = 'identities' | 'namespaces' | 'trustDomains' | 'ipBlocks' | 'methods' | 'paths' | 'hosts' | 'ports';

type ValuedPart = Extract<Part, { values: unknown }>;

/** AND of parts. */
export type Clause = readonly Part[];
/** OR of clauses: `[]` never matches, `[[]]` always does. */
export type Dnf = readonly Clause[];

export const TRUE: Dnf = [[]];
export const FALSE: Dnf = [];

export type Formula =
  | { readonly t: 'and' | 'or'; readonly xs: readonly Formula[] }
  | { readonly t: 'not'; readonly x: Formula }
  | { readonly t: 'dnf'; readonly under: Dnf; readonly over: Dnf };

/** An atom the native model states exactly. */
export const exact = (d: Dnf): Formula => ({ t: 'dnf', under: d, over: d });
export const field = (f: ListField, values: readonly (string | number)[], negated = false): Part => ({ kind: 'field', field: f, negated, values });

/** Clauses one formula may expand to; beyond it the resource is refused (a hostile nesting cannot blow up memory). */
export const MAX_CLAUSES = 256;

/** Nesting deeper than this is refused: istiod writes three levels. */
export const MAX_DEPTH = 16;

export class TooManyClauses extends Error {}

function negatePart(p: Part): Part {
  if (p.kind === 'authenticated') return { kind: 'authenticated', value: !p.value };
  return { ...p, negated: !p.negated };
}

function product(ds: readonly Dnf[]): Dnf {
  let acc: Clause[] = [[]];
  for (const d of ds) {
    const next: Clause[] = [];
    for (const a of acc) for (const b of d) next.push([...a, ...b]);
    if (next.length > MAX_CLAUSES) throw new TooManyClauses();
    acc = next;
  }
  return acc;
}

/** OR of several DNFs; adjacent one-part clauses of one positive field become one part with every value (`or_ids` of principals → one `identities` list). */
function union(ds: readonly Dnf[]): Dnf {
  const out: Clause[] = [];
  for (const d of ds) {
    for (const c of d) {
      const prev = out[out.length - 1];
      const p = c[0];
      const q = prev?.[0];
      if (c.length === 1 && prev?.length === 1 && p !== undefined && q !== undefined && mergeable(q, p)) {
        out[out.length - 1] = [{ ...q, values: [...(q as ValuedPart).values, ...(p as ValuedPart).values] } as Part];
      } else out.push(c);
    }
  }
  if (out.length > MAX_CLAUSES) throw new TooManyClauses();
  return out;
}

function mergeable(a: Part, b: Part): boolean {
  if (a.kind === 'field' && b.kind === 'field') return !a.negated && !b.negated && a.field === b.field;
  if (a.kind === 'header' && b.kind === 'header') return !a.negated && !b.negated && a.name === b.name;
  return false;
}

/** NOT of a DNF: AND over its clauses of (OR over each clause's negated parts). */
export function negate(d: Dnf): Dnf {
  return product(d.map((c) => union(c.map((p) => [[negatePart(p)]]))));
}

/**
 * The DNF of `f` (or of NOT f when `positive` is false), each inexact atom in the form that keeps
 * the result below (`under`) or above (`over`) Envoy's meaning. Throws TooManyClauses.
 */
export function dnf(f: Formula, bound: 'under' | 'over', positive = true): Dnf {
  switch (f.t) {
    case 'dnf':
      // NOT(over) ⊆ NOT(exact) ⊆ NOT(under): the negation flips which form is the safe one.
      return positive ? (bound === 'under' ? f.under : f.over) : negate(bound === 'under' ? f.over : f.under);
    case 'not':
      return dnf(f.x, bound, !positive);
    case 'and':
    case 'or': {
      const parts = f.xs.map((x) => dnf(x, bound, positive));
      return (f.t === 'and') === positive ? product(parts) : union(parts);
    }
  }
}

const SOURCE_FIELDS: ReadonlySet<ListField> = new Set(['identities', 'namespaces', 'trustDomains', 'ipBlocks']);
const NEGATED_NAME: Record<ListField, string> = {
  identities: 'notIdentities',
  namespaces: 'notNamespaces',
  trustDomains: 'notTrustDomains',
  ipBlocks: 'notIpBlocks',
  methods: 'notMethods',
  paths: 'notPaths',
  hosts: 'notHosts',
  ports: 'notPorts',
};

type Mutable = Record<string, unknown>;

/**
 * One clause as native conditions, all of which must hold: negated parts of one field join one
 * `not*` list; a positive field used twice (an AND of two lists) needs a second condition.
 * Undefined when the clause can never match (authenticated and unauthenticated at once).
 */
export function clauseConditions(c: Clause): Condition[] | undefined {
  const conds: Mutable[] = [{}];
  let auth: boolean | undefined;
  const put = (key: string, values: readonly unknown[], merge: boolean) => {
    if (merge) {
      const host = conds[0]!;
      host[key] = [...((host[key] as unknown[] | undefined) ?? []), ...values];
      return;
    }
    let target = conds.find((x) => x[key] === undefined);
    if (target === undefined) conds.push((target = {}));
    target[key] = [...values];
  };
  for (const p of c) {
    if (p.kind === 'authenticated') {
      if (auth !== undefined && auth !== p.value) return undefined;
      auth = p.value;
    } else if (p.kind === 'field') put(p.negated ? NEGATED_NAME[p.field] : p.field, p.values, p.negated);
    else {
      const key = p.negated ? 'notHeaders' : 'headers';
      let target = p.negated ? conds[0]! : conds.find((x) => (x.headers as Mutable | undefined)?.[p.name] === undefined);
      if (target === undefined) conds.push((target = {}));
      const map = ((target[key] as Mutable | undefined) ?? {}) as Record<string, string[]>;
      map[p.name] = [...(map[p.name] ?? []), ...p.values];
      target[key] = map;
    }
  }
  if (auth !== undefined) conds[0]!.unauthenticated = !auth;
  return conds.map(dedupe) as Condition[];
}

function dedupe(c: Mutable): Mutable {
  for (const [k, v] of Object.entries(c)) if (Array.isArray(v)) c[k] = [...new Set(v)];
  return c;
}

/** Whether a condition holds only Source fields (it can be a rule's `from` entry). */
export function isSourceOnly(c: Condition): boolean {
  return Object.keys(c).every((k) => k === 'unauthenticated' || SOURCE_FIELDS.has(k as ListField) || SOURCE_FIELDS.has(baseOf(k)));
}

/** Whether a condition holds only Operation fields (it can be a rule's `to` entry). */
export function isOperationOnly(c: Condition): boolean {
  return Object.keys(c).every((k) => k === 'headers' || k === 'notHeaders' || (!SOURCE_FIELDS.has(k as ListField) && !SOURCE_FIELDS.has(baseOf(k)) && k !== 'unauthenticated'));
}

function baseOf(k: string): ListField {
  return (k.startsWith('not') ? k[3]!.toLowerCase() + k.slice(4) : k) as ListField;
}
