// `npm run demo` is the main job: it must run the mesh, show who called whom, and exit 0 by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from './process.js';

test('sidecarless demo runs a live mesh and exits 0 with a summary', async () => {
  const started = Date.now();
  const r = await cli(['demo']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /orders → payments-[12] +200 +server proved spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments; it saw the caller as spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
  assert.match(r.stdout, /orders → payments +POST \/admin\/refund +403 +denied before the app ran \(audit: rule nobody-reaches-admin/);
  assert.match(r.stdout, /intruder \(spiffe:\/\/evil\.example\/ns\/default\/sa\/orders\) → payments-1 +refused/);
  assert.match(r.stdout, /Summary: (\d+)\/\1 calls from orders succeeded over mutual TLS/);
  assert.ok(Date.now() - started < 30_000, 'the demo ends by itself');
});
