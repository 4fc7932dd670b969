// A short run of every fuzz target (test/fuzz/targets), a fresh seed each time: a failure prints
// the seed and the counterexample, which `npm run fuzz -- --target NAME --seed N` replays; each
// target's known counterexamples (its `regressions`) are replayed first on every run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTarget } from './harness.js';
import { TARGETS } from './targets/index.js';

for (const target of TARGETS) {
  test(`fuzz ${target.name}: ${target.oracle}`, async () => {
    const r = await runTarget(target);
    assert.equal(r.failure, undefined, `${target.name} (seed ${r.seed}; replay: npm run fuzz -- --target ${target.name} --seed ${r.seed}):\n${r.failure}`);
    assert.ok(r.runs >= target.shortRuns, `${r.runs} runs`);
  });
}
