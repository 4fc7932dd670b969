import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchPolicy } from '../../bench/policy.js';

test('benchPolicy (quick) runs and reports the compiled evaluator against always-allow', async () => {
  const r = await benchPolicy({ quick: true });
  assert.equal(r.name, 'policy');
  assert.ok(r.rows.some((x) => x.evaluator === 'always-allow'));
  const compiled = r.rows.find((x) => String(x.evaluator).startsWith('compiled (100 rules'));
  assert.ok(compiled && typeof compiled['median ns/decision'] === 'number' && compiled['median ns/decision'] > 0);
});
