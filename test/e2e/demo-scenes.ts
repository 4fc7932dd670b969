// What `sidecarless demo` must show: every scene's outcome, read back from what it printed. Used by
// test/e2e/no-otel.test.ts, which runs the demo from the packed package without
// @opentelemetry/api (one run of the demo, the published CLI, covers both).
import assert from 'node:assert/strict';

const ID = (sa: string) => `spiffe://cluster\\.local/ns/default/sa/${sa}`;

/** Asserts the demo's run: exit 0, nothing on stderr, and each scene as it should be. */
export function assertDemoScenes(r: { code: number | null; stdout: string; stderr: string }): void {
  const out = r.stdout;
  assert.equal(r.code, 0, out + r.stderr);
  assert.equal(r.stderr, '', 'nothing on stderr (no warnings from the children)');
  assert.match(out, /control-plane │ control plane serving ADS \+ CA on 127\.0\.0\.1:\d+ \(TLS\)/);
  // Four replicas registered by themselves: no endpoint is written anywhere.
  assert.equal((out.match(/^ {2}payments(-v2)?-\d +registered 127\.0\.0\.1:\d+ as an endpoint of payments/gm) ?? []).length, 4, out);
  assert.match(out, new RegExp(`orders → payments-[123] +200 +server proved ${ID('payments')}; it saw the caller as ${ID('orders')}`));
  assert.match(out, /POST \/admin\/refund +403 +denied before the app ran \(audit: rule nobody-reaches-admin of the mesh policy/);
  const load = /60 more calls, 6 at a time: (.*) — the slow/.exec(out);
  assert.ok(load, out);
  const slow = Number(/payments-3 (\d+)/.exec(load[1]!)?.[1] ?? 0);
  assert.ok(slow < 20, `the slow replica drained: ${load[1]}`);
  const joined = /payments-4 joins .* of the next 60 calls it served (\d+)/.exec(out);
  assert.ok(joined && Number(joined[1]) > 0, 'calls reach the replica that joined');
  assert.match(out, /payments-4 leaves[\s\S]*?: (\d+) calls meanwhile, 0 failed/);
  const split = /of the next 200 calls payments-v2 served (\d+) .* 0 failed/.exec(out);
  assert.ok(split, out);
  assert.ok(Number(split[1]) >= 4 && Number(split[1]) <= 40, `90/10 within tolerance: ${split[1]}/200 to payments-v2`);
  assert.match(out, /control-plane │ mesh file .*mesh\.yaml reloaded/);
  assert.match(out, /the next POST \/charge: 403 — denied before the app ran \(audit: rule charges-frozen of the mesh policy\)/);
  assert.match(out, /intruder \(spiffe:\/\/evil\.example\/ns\/default\/sa\/orders\) → payments-1 .* refused during the TLS handshake/);
  assert.match(out, new RegExp(`sidecarless stat --admin http://127\\.0\\.0\\.1:\\d+[\\s\\S]*INBOUND[\\s\\S]*${ID('orders')} +payments`));
  assert.match(out, /sidecarless control-plane status[\s\S]*services \(3\)[\s\S]*clients \(5\)[\s\S]*certificates issued/);
  assert.match(out, /Summary: (\d+)\/\1 scenes behaved as they should/);
}
