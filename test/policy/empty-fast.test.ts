// parsePolicy knows an empty document (what the mesh loads when no policy is given) without the
// zod schema (cold start, issue 14): the same canonical result, and anything else — a near miss
// included — still goes to the schema and its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from '../../src/policy/model.js';
import { PolicyError } from '../../src/errors.js';

test('empty documents parse to no rules and no servers; near misses are judged by the schema', () => {
  for (const doc of [{}, { rules: [] }, { servers: [], rules: [] }, { apiVersion: 'sidecarless.dev/v1', kind: 'Policy' }, { rules: undefined }, Object.create(null)]) {
    assert.deepStrictEqual(parsePolicy(doc), { rules: [], servers: [] }, JSON.stringify(doc));
  }
  for (const doc of [{ kind: 'Other' }, { apiVersion: 'v2' }, { rules: null }, { rules: [{}] }, { servers: {} }, { colour: 'blue' }]) {
    assert.throws(() => parsePolicy(doc), PolicyError, JSON.stringify(doc));
  }
  assert.throws(() => parsePolicy({ rulez: [] }), /rulez: unknown field \(did you mean "rules"\?\)/);
});
