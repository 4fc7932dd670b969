// SourceCore's counters: what status() reports as rotations and failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { ManualSource, TD, filesOf, idOf } from '../helpers/certs.js';

test('the same SVID accepted again (a Workload API stream after a reconnect) is no rotation; a new one is; failures are counted', async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const first = await ca.issue({ spiffeId: idOf('orders') });
  const s = new ManualSource();
  let updates = 0;
  s.onUpdate(() => updates++);
  s.set(filesOf(first));
  const held = s.getX509Svid();
  s.set(filesOf(first));
  assert.equal(s.status().rotations, 0);
  assert.equal(updates, 1, 'the same SVID and roots again: nothing to tell (no TLS context rebuilt)');
  assert.equal(s.getX509Svid(), held, 'the SVID object in use stays');
  const other = await createDevCa({ trustDomain: 'partner.example' });
  s.set(filesOf(first, other.bundlePem));
  assert.equal(updates, 2, 'the same SVID with new roots is told');
  assert.equal(s.status().rotations, 0);
  s.fail(new Error('stream ended'));
  assert.equal(s.status().failures, 1);
  assert.equal(s.status().state, 'stale');
  s.set(filesOf(first));
  assert.equal(s.status().state, 'ready', 'the same SVID again clears the error');
  assert.equal(s.status().rotations, 0);
  s.set(filesOf(await ca.issue({ spiffeId: idOf('orders') })));
  assert.equal(s.status().rotations, 1);
  assert.equal(s.status().failures, 1, 'failures count since start');
});
