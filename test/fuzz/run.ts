// `npm run fuzz -- [--minutes N] [--target NAME] [--seed N]`: runs the fuzz targets for longer than
// `npm test` does — every target in turn, new seeds, for N minutes in all (default 1) — and prints
// runs per target and any counterexample with its seed. Exit 1 when one failed.
import { runTarget, type FuzzRun } from './harness.js';
import { TARGETS } from './targets/index.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const minutes = Number(arg('minutes') ?? 1);
const only = arg('target');
const seed = arg('seed') === undefined ? undefined : Number(arg('seed'));
const targets = only ? TARGETS.filter((t) => t.name === only) : TARGETS;
if (targets.length === 0 || !(minutes > 0)) {
  console.error(`usage: npm run fuzz -- [--minutes N] [--target ${TARGETS.map((t) => t.name).join('|')}] [--seed N]`);
  process.exit(2);
}

const end = Date.now() + minutes * 60_000;
const slice = Math.max(1_000, Math.floor((minutes * 60_000) / targets.length / 2));
const totals = new Map<string, { runs: number; ms: number; rounds: number }>();
const failures: FuzzRun[] = [];
while (Date.now() < end && failures.length === 0) {
  for (const t of targets) {
    if (Date.now() >= end) break;
    const r = seed !== undefined ? await runTarget(t, { seed, numRuns: t.shortRuns * 20 }) : await runTarget(t, { untilMs: Math.min(end, Date.now() + slice) });
    const x = totals.get(t.name) ?? { runs: 0, ms: 0, rounds: 0 };
    totals.set(t.name, { runs: x.runs + r.runs, ms: x.ms + r.ms, rounds: x.rounds + 1 });
    if (r.failure) failures.push(r);
  }
  if (seed !== undefined) break;
}
for (const [name, x] of totals) console.log(`${name.padEnd(18)} ${String(x.runs).padStart(10)} runs  ${(x.ms / 1000).toFixed(1).padStart(7)} s  ${Math.round(x.runs / Math.max(0.001, x.ms / 1000))} runs/s`);
for (const f of failures) console.log(`\nFAILED ${f.name} (seed ${f.seed}; replay: npm run fuzz -- --target ${f.name} --seed ${f.seed})\n${f.failure}`);
process.exit(failures.length > 0 ? 1 : 0);
