// examples/grpc/payments.ts as a user runs it: a grpc-js server and client through mesh.grpc, one
// method allowed (the handler sees the caller's SPIFFE ID) and one denied with status 7.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, tsxArgs } from './process.js';

test('examples/grpc/payments.ts: Charge allowed with the caller\'s identity, Refund PERMISSION_DENIED, its handler never run', async () => {
  const r = await run(process.execPath, tsxArgs('examples/grpc/payments.ts'), { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /orders → Charge: OK \{"charged":42,"by":"spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders"\}/);
  assert.match(r.stdout, /orders → Refund: status 7 \(PERMISSION_DENIED\) sidecarless: \/shop\.Payments\/Refund denied by no-refunds/);
  assert.match(r.stdout, /handlers that ran: Charge\n/);
  assert.doesNotMatch(r.stderr, /DEP0123|Warning/);
});
