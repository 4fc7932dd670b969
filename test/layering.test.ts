// The layer order of DESIGN.md ("Arrows point down only"), held by the code: every import in src/
// (static, type-only, re-export and dynamic import() alike, read by TypeScript's own pre-processor)
// goes to the same layer or a lower one, and no file reaches itself again through its imports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');

/**
 * Layers, lowest first. One line is one layer: its folders (or top-level files) may import each
 * other and anything on an earlier line, never anything on a later one.
 * DESIGN.md's order: the lowest layer (clock, errors, duration, logger, random and their helpers),
 * identity, sources, tls, telemetry, policy, the two sides (inbound, outbound, and the admin
 * endpoint beside them), grpc, config (the user's option schemas), control-plane, server, mesh,
 * the entry points that build a mesh (serverless wrappers, the CLI), index.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['clock', 'errors', 'duration', 'logger', 'random', 'suggest', 'zod-issues', 'proto', 'version', 'change-signal'],
  ['identity'],
  ['sources'],
  ['tls'],
  ['telemetry'],
  ['policy'],
  ['inbound', 'outbound', 'admin'],
  ['grpc'],
  ['config'],
  ['control-plane'],
  ['server'],
  ['mesh'],
  ['serverless', 'cli'],
  ['index'],
];

/**
 * Known upward imports, each with the change that removes it. Keep this list short: an entry
 * here is a debt, not a rule.
 */
const ALLOWED_UPWARD: ReadonlyArray<{ from: RegExp; to: string; why: string }> = [
];

/** Known import cycles (files of one cycle, sorted), each with its owner. */
const ALLOWED_CYCLES: ReadonlyArray<{ files: readonly string[]; why: string }> = [
];

function layerOf(file: string): number {
  const first = file.split('/')[0]!.replace(/\.ts$/, '');
  const i = LAYERS.findIndex((l) => l.includes(first));
  if (i < 0) throw new Error(`src/${file} is in no layer of test/layering.test.ts: add "${first}" where DESIGN.md puts it`);
  return i;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (name.endsWith('.ts')) out.push(relative(src, full).split(sep).join('/'));
  }
  return out;
}

/** The src/-relative files `file` imports (relative specifiers only: packages are not layers). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(src, file), 'utf8');
  const info = ts.preProcessFile(text, true, true);
  const out: string[] = [];
  for (const ref of info.importedFiles) {
    if (!ref.fileName.startsWith('.')) continue;
    const target = relative(src, join(src, dirname(file), ref.fileName)).split(sep).join('/').replace(/\.js$/, '.ts');
    out.push(target);
  }
  return out;
}

const files = sourceFiles(src);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('the import reader sees every kind of import (static, type-only, re-export, dynamic)', () => {
  const kinds = ts.preProcessFile(
    `import a from './a.js'; import type { B } from './b.js'; export { c } from './c.js'; export * from './d.js'; const e = await import('./e.js');`,
    true,
    true,
  );
  assert.deepEqual(kinds.importedFiles.map((r) => r.fileName), ['./a.js', './b.js', './c.js', './d.js', './e.js']);
});

test('every relative import in src/ resolves to a file of src/', () => {
  const missing: string[] = [];
  for (const [file, targets] of graph) for (const t of targets) if (!graph.has(t)) missing.push(`src/${file} → src/${t}`);
  assert.deepEqual(missing, []);
});

test('no import points up the layer order of DESIGN.md', () => {
  const upward: string[] = [];
  const used = new Set<(typeof ALLOWED_UPWARD)[number]>();
  for (const [file, targets] of graph) {
    for (const t of targets) {
      if (layerOf(t) <= layerOf(file)) continue;
      const allowed = ALLOWED_UPWARD.find((a) => a.from.test(file) && a.to === t);
      if (allowed) used.add(allowed);
      else upward.push(`src/${file} (${LAYERS[layerOf(file)]!.join('/')}) → src/${t} (${LAYERS[layerOf(t)]!.join('/')})`);
    }
  }
  assert.deepEqual(upward, [], 'upward imports: move the shared type or function down to the lower layer');
  const stale = ALLOWED_UPWARD.filter((a) => !used.has(a)).map((a) => `${a.from} → ${a.to}: ${a.why}`);
  assert.deepEqual(stale, [], 'these allowed upward imports are gone: delete their lines from ALLOWED_UPWARD');
});

test('inbound and outbound do not import each other', () => {
  const crossing: string[] = [];
  for (const [file, targets] of graph) {
    const side = file.split('/')[0];
    if (side !== 'inbound' && side !== 'outbound') continue;
    for (const t of targets) {
      const other = t.split('/')[0];
      if ((other === 'inbound' || other === 'outbound') && other !== side) crossing.push(`src/${file} → src/${t}`);
    }
  }
  assert.deepEqual(crossing, []);
});

/** Strongly connected components of more than one file (Tarjan), and files that import themselves. */
function cycles(g: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

test('the cycle finder finds a cycle (a → b → c → a) and not a diamond', () => {
  assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]])), [['a', 'b', 'c']]);
  assert.deepEqual(cycles(new Map([['a', ['b', 'c']], ['b', ['d']], ['c', ['d']], ['d', []]])), []);
});

test('no import cycle in src/ (type-only imports count: they tie the modules as much)', () => {
  const found = cycles(graph);
  const key = (c: readonly string[]) => c.join(' ↔ ');
  const known = new Set(ALLOWED_CYCLES.map((c) => key(c.files)));
  assert.deepEqual(found.filter((c) => !known.has(key(c))).map(key), [], 'break the cycle: move what both need into a module of its own');
  const stale = ALLOWED_CYCLES.filter((c) => !found.some((f) => key(f) === key(c.files))).map((c) => key(c.files));
  assert.deepEqual(stale, [], 'these allowed cycles are gone: delete their lines from ALLOWED_CYCLES');
});
