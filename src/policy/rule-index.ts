/**
 * Rule indexing by what a rule requires of the peer, so a decision only tests the rules that can
 * possibly match the request's peer.
 *
 * Every positive source field of a clause (`identities`, `serviceAccounts`, `namespaces`,
 * `trustDomains`, `unauthenticated: true`) is a necessary condition of that clause, because the
 * fields of a clause are ANDed. A clause is therefore indexed under the keys of ONE such field
 * (the most selective one), and a rule under the keys of all its `from` clauses (any of them may
 * match) or, failing that, of one `when` clause (every one of them must match). The keys:
 * - exact SPIFFE ID → `exact`;
 * - identity prefix `p*` → `prefix`, keyed by `p` cut after its last `/`: a peer ID that starts
 *   with `p` starts with that key, and the key ends at a `/` of the ID, so looking up the ID's
 *   prefixes that end at each of its `/` finds it (O(segments) map lookups);
 * - identity suffix `*s` → `suffix`, keyed by `s` from its first `/`: symmetric, looked up with
 *   the ID's suffixes that start at each of its `/`;
 * - exact namespace → `ns`; service account `ns/sa` → `sa`, `ns/*` → `saNs` (only for peers of
 *   the mesh's trust domain, as `serviceAccounts` requires); trust domain → `td`;
 * - `unauthenticated: true` → the list for unauthenticated peers.
 * A field that cannot be keyed (`*` identities, `*x` suffixes without `/`, namespace wildcards,
 * `unauthenticated: false`, `not*` fields only) does not constrain enough; a rule with a clause
 * that has no keyable field at all goes to `always`, which every decision scans.
 *
 * The candidate list of a peer is the union of its buckets plus `always`, merged back into policy
 * order and deduplicated: the evaluator tests them in that order, so the first match is the rule
 * with the lowest position, exactly as a full scan finds it (decisions and reported rule names do
 * not change; the index only skips rules that cannot match). Candidates are a superset: every
 * candidate is still matched in full.
 *
 * Once merged, the list is filtered with the peer fields of each candidate rule (`matchPeer`, the
 * very test request matching applies), so the per-peer list holds only rules whose source side
 * can match this peer: a decision then tests one or two rules instead of every rule sharing a
 * bucket (e.g. all rules of a namespace keyed by `spiffe://td/ns/x/sa/` for `…/sa/svc-12*`).
 *
 * Building the list costs a few map lookups, a small merge and filter, so it is cached per PeerIdentity
 * object in a WeakMap (peer identities are created once per verified connection and reused for
 * every request on it; the entry dies with the object). The entry also remembers the identity
 * fields it was built from and is rebuilt if they differ, so a caller that reuses one mutable
 * object for different peers still gets correct decisions. When only exact IDs are indexed the
 * merged list per ID is precomputed at compile time instead (no cache, no allocation).
 */
import type { PeerIdentity } from '../identity/peer-identity.js';
import { type CompiledClause, matchPeer } from './match.js';

/** What the index needs of a compiled rule: its position in its scope (policy order) and clauses. */
export interface IndexableRule {
  /** Position among the rules of its scope; lower positions are tested (and decide) first. */
  readonly order: number;
  readonly matchNothing: boolean;
  readonly from: readonly CompiledClause[];
  readonly when: readonly CompiledClause[];
}

type KeyKind = 'exact' | 'prefix' | 'suffix' | 'ns' | 'sa' | 'saNs' | 'td' | 'unauth';
type Key = readonly [KeyKind, string];
interface Keyed {
  readonly keys: readonly Key[];
  /** Rough selectivity (higher = fewer peers): picks the field to index a clause by. */
  readonly score: number;
}

interface CacheEntry<R> {
  readonly id: string;
  readonly kind: 'spiffe' | 'dns';
  readonly trustDomain: string | undefined;
  readonly namespace: string | undefined;
  readonly serviceAccount: string | undefined;
  readonly rules: readonly R[];
}

/** Rules of one action in one scope, indexed by peer. Build with {@link buildIndex}. */
export interface RuleIndex<R extends IndexableRule> {
  /** Rules that can match, in policy order (matchNothing rules are left out). */
  readonly all: readonly R[];
  /** Rules without a keyable source constraint: candidates for every peer. */
  readonly always: readonly R[];
  /** Candidates for an unauthenticated peer: the rules whose peer fields admit one. */
  readonly unauthenticated: readonly R[];
  /** Any bucket other than the unauthenticated one is in use. */
  readonly keyed: boolean;
  /** Exact-ID-only indexes: the merged candidate list per ID (other IDs get `always`). */
  readonly byId: ReadonlyMap<string, readonly R[]> | undefined;
  /** @internal */ readonly exact: ReadonlyMap<string, readonly R[]>;
  /** @internal */ readonly prefix: ReadonlyMap<string, readonly R[]>;
  /** @internal */ readonly suffix: ReadonlyMap<string, readonly R[]>;
  /** @internal */ readonly ns: ReadonlyMap<string, readonly R[]>;
  /** @internal */ readonly sa: ReadonlyMap<string, readonly R[]>;
  /** @internal */ readonly saNs: ReadonlyMap<string, readonly R[]>;
  /** @internal */ readonly td: ReadonlyMap<string, readonly R[]>;
  /** @internal */ readonly trustDomain: string;
  /** @internal */ readonly cache: WeakMap<PeerIdentity, CacheEntry<R>>;
}

const NONE: readonly never[] = Object.freeze([]);

function slashes(s: string): number {
  let n = 0;
  for (let i = s.indexOf('/'); i >= 0; i = s.indexOf('/', i + 1)) n++;
  return n;
}

/** The best keyed field of one clause, or undefined when no positive source field can be keyed. */
function clauseKeys(c: CompiledClause): Keyed | undefined {
  const options: Keyed[] = [];
  const id = c.identities;
  if (id !== undefined && !id.any) {
    const keys: Key[] = [];
    let score = 100;
    let ok = true;
    for (const e of id.exact) keys.push(['exact', e]);
    // DNS-like names: exact ones are keyed like SPIFFE IDs (the two kinds never share a string);
    // a label-wise suffix (`*.ns.serviceaccount…`) cannot be keyed by `/`.
    const dns = c.dnsIdentities;
    if (dns !== undefined) {
      for (const e of dns.exact) keys.push(['exact', e]);
      if (dns.prefixes.length > 0 || dns.suffixes.length > 0) ok = false;
    }
    for (const p of id.prefixes) {
      const cut = p.lastIndexOf('/');
      if (cut < 0) ok = false;
      else {
        const k = p.slice(0, cut + 1);
        keys.push(['prefix', k]);
        // `spiffe://td/` has 3 slashes (a whole trust domain), `spiffe://td/ns/x/` 5, …
        score = Math.min(score, 10 * slashes(k));
      }
    }
    for (const s of id.suffixes) {
      const cut = s.indexOf('/');
      if (cut < 0) ok = false;
      else {
        keys.push(['suffix', s.slice(cut)]);
        score = Math.min(score, 60);
      }
    }
    if (ok) options.push({ keys, score });
  }
  if (c.serviceAccounts !== undefined) {
    const keys: Key[] = [];
    let score = 90;
    for (const [ns, sas] of c.serviceAccounts) {
      if (sas === '*') {
        keys.push(['saNs', ns]);
        score = Math.min(score, 60);
      } else for (const sa of sas) keys.push(['sa', `${ns}/${sa}`]);
    }
    options.push({ keys, score });
  }
  const ns = c.namespaces;
  if (ns !== undefined && !ns.any && ns.prefixes.length === 0 && ns.suffixes.length === 0) {
    options.push({ keys: [...ns.exact].map((n): Key => ['ns', n]), score: 60 });
  }
  if (c.unauthenticated === true) options.push({ keys: [['unauth', '']], score: 50 });
  if (c.trustDomains !== undefined) options.push({ keys: [...c.trustDomains].map((t): Key => ['td', t]), score: 20 });
  let best: Keyed | undefined;
  for (const o of options) if (best === undefined || o.score > best.score) best = o;
  return best;
}

/** The keys a rule is indexed under, or undefined when it must be tested for every peer. */
function ruleKeys(r: IndexableRule): readonly Key[] | undefined {
  let best: Keyed | undefined;
  if (r.from.length > 0) {
    const keys: Key[] = [];
    let score = Infinity;
    for (const c of r.from) {
      const k = clauseKeys(c);
      if (k === undefined) {
        score = -1;
        break;
      }
      keys.push(...k.keys);
      score = Math.min(score, k.score);
    }
    if (score >= 0) best = { keys, score };
  }
  for (const c of r.when) {
    const k = clauseKeys(c);
    if (k !== undefined && (best === undefined || k.score > best.score)) best = k;
  }
  return best?.keys;
}

/**
 * Whether a request from `peer` can match `r` at all, judging only the peer fields (the same
 * `matchPeer` that request matching applies): some `from` clause and every `when` clause hold.
 */
function peerCanMatch(r: IndexableRule, peer: PeerIdentity | null, trustDomain: string): boolean {
  if (r.from.length > 0 && !r.from.some((c) => matchPeer(c, peer, trustDomain))) return false;
  return r.when.every((c) => matchPeer(c, peer, trustDomain));
}

function byOrder(a: IndexableRule, b: IndexableRule): number {
  return a.order - b.order;
}

/** Merges candidate lists (each in policy order) into one list in policy order, without duplicates. */
function merge<R extends IndexableRule>(lists: ReadonlyArray<readonly R[]>): readonly R[] {
  if (lists.length === 0) return NONE;
  if (lists.length === 1) return lists[0]!;
  const all: R[] = [];
  for (const l of lists) for (let i = 0; i < l.length; i++) all.push(l[i]!);
  all.sort(byOrder);
  let n = 0;
  for (let i = 0; i < all.length; i++) if (n === 0 || all[n - 1] !== all[i]) all[n++] = all[i]!;
  all.length = n;
  return all;
}

/** Indexes `rules` (in policy order) for the mesh's own `trustDomain`. */
export function buildIndex<R extends IndexableRule>(rules: readonly R[], trustDomain: string): RuleIndex<R> {
  const all = rules.filter((r) => !r.matchNothing);
  const always: R[] = [];
  const maps: Record<Exclude<KeyKind, 'unauth'>, Map<string, R[]>> = {
    exact: new Map(),
    prefix: new Map(),
    suffix: new Map(),
    ns: new Map(),
    sa: new Map(),
    saNs: new Map(),
    td: new Map(),
  };
  for (const r of all) {
    const keys = ruleKeys(r);
    if (keys === undefined) {
      always.push(r);
      continue;
    }
    for (const [kind, value] of keys) {
      if (kind === 'unauth') continue; // kept out of `always`; `unauthenticated` below finds it
      const m = maps[kind];
      const list = m.get(value);
      if (list === undefined) m.set(value, [r]);
      else if (list[list.length - 1] !== r) list.push(r);
    }
  }
  const keyed = Object.values(maps).some((m) => m.size > 0);
  const onlyExact = maps.exact.size > 0 && Object.entries(maps).every(([k, m]) => k === 'exact' || m.size === 0);
  let byId: Map<string, readonly R[]> | undefined;
  if (onlyExact) {
    byId = new Map();
    for (const [id, list] of maps.exact) byId.set(id, merge([always, list]));
  }
  return {
    all,
    always,
    unauthenticated: all.filter((r) => peerCanMatch(r, null, trustDomain)),
    keyed,
    byId,
    ...maps,
    trustDomain,
    cache: new WeakMap(),
  };
}

/** Collects and merges the candidate lists of an authenticated peer (uncached). */
function collect<R extends IndexableRule>(idx: RuleIndex<R>, peer: PeerIdentity): readonly R[] {
  const lists: Array<readonly R[]> = [];
  const add = (l: readonly R[] | undefined): void => {
    if (l !== undefined) lists.push(l);
  };
  if (idx.always.length > 0) lists.push(idx.always);
  const id = peer.id;
  if (idx.exact.size > 0) add(idx.exact.get(id));
  const pre = idx.prefix.size > 0;
  const suf = idx.suffix.size > 0;
  if (pre || suf) {
    for (let i = id.indexOf('/'); i >= 0; i = id.indexOf('/', i + 1)) {
      if (pre) add(idx.prefix.get(id.slice(0, i + 1)));
      if (suf) add(idx.suffix.get(id.slice(i)));
    }
  }
  const ns = peer.namespace;
  if (ns !== undefined) {
    if (idx.ns.size > 0) add(idx.ns.get(ns));
    if (peer.trustDomain === idx.trustDomain) {
      if (idx.saNs.size > 0) add(idx.saNs.get(ns));
      if (idx.sa.size > 0 && peer.serviceAccount !== undefined) add(idx.sa.get(`${ns}/${peer.serviceAccount}`));
    }
  }
  if (idx.td.size > 0 && peer.trustDomain !== undefined) add(idx.td.get(peer.trustDomain));
  const merged = merge(lists);
  const out = merged.filter((r) => peerCanMatch(r, peer, idx.trustDomain));
  return out.length === merged.length ? merged : out.length === 0 ? NONE : out;
}

/**
 * The rules of `idx` that can match a request from `peer`, in policy order. Allocation-free once
 * the peer object has been seen (or always, for exact-ID-only and unindexed rule sets).
 */
export function candidates<R extends IndexableRule>(idx: RuleIndex<R>, peer: PeerIdentity | null): readonly R[] {
  if (peer === null) return idx.unauthenticated;
  if (!idx.keyed) return idx.always;
  if (idx.byId !== undefined) return idx.byId.get(peer.id) ?? idx.always;
  const hit = idx.cache.get(peer);
  if (
    hit !== undefined &&
    hit.id === peer.id &&
    hit.kind === peer.kind &&
    hit.trustDomain === peer.trustDomain &&
    hit.namespace === peer.namespace &&
    hit.serviceAccount === peer.serviceAccount
  ) {
    return hit.rules;
  }
  const rules = collect(idx, peer);
  idx.cache.set(peer, {
    id: peer.id,
    kind: peer.kind,
    trustDomain: peer.trustDomain,
    namespace: peer.namespace,
    serviceAccount: peer.serviceAccount,
    rules,
  });
  return rules;
}
