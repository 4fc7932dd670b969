import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SERIES, TrafficStats } from '../../src/telemetry/stats.js';

test('series: the same object per (direction, service, peer, route); past MAX_SERIES new label sets fold into _other', () => {
  const t = new TrafficStats();
  const a = t.series('outbound', 'payments', 'spiffe://x/a', '');
  assert.equal(t.series('outbound', 'payments', 'spiffe://x/a', ''), a);
  assert.notEqual(t.series('inbound', 'payments', 'spiffe://x/a', ''), a);
  assert.notEqual(t.series('outbound', 'payments', 'spiffe://x/a', 'r'), a);
  for (let i = 0; t.snapshot().series.length < MAX_SERIES; i++) t.series('inbound', 'svc', `spiffe://x/p${i}`, '');
  const other = t.series('inbound', 'svc', 'spiffe://x/new', '/new');
  assert.deepEqual([other.peer, other.route], ['_other', '_other']);
  assert.equal(t.series('inbound', 'svc', 'spiffe://x/new2', ''), other);
  assert.equal(t.series('outbound', 'payments', 'spiffe://x/a', ''), a, 'existing series are still found');
  assert.equal(t.snapshot().series.length, MAX_SERIES + 1);
});

test('authz: one tally per (decision, rule, action), in creation order', () => {
  const t = new TrafficStats();
  t.authz('allow', 'r1', 'allow');
  t.authz('allow', 'r1', 'allow');
  t.authz('deny', 'default', 'default');
  t.authz('allow', 'r1', 'audit');
  assert.deepEqual(t.snapshot().authz, [
    { decision: 'allow', rule: 'r1', action: 'allow', count: 2 },
    { decision: 'deny', rule: 'default', action: 'default', count: 1 },
    { decision: 'allow', rule: 'r1', action: 'audit', count: 1 },
  ]);
});
