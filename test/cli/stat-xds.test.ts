// The xDS section of `sidecarless stat`, pure: a stream in backoff, nothing requested yet, a control
// plane without ADS, hosts waiting, and long peer text cut.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderXds } from '../../src/cli/stat-xds.js';
import type { XdsStatus } from '../../src/control-plane/xds/xds-status.js';

const base: XdsStatus = {
  address: 'istiod:15012',
  ads: { stream: { state: 'connected', failures: 0, retryAt: undefined, lastError: undefined }, types: [], ignored: { count: 0, last: undefined } },
  hosts: [],
};

test('nothing requested yet says what asks for a Listener; a control plane without ADS says so and nothing else', () => {
  assert.match(renderXds(base), /^XDS istiod:15012: stream connected\n {2}no resources requested yet \(the first request to a host no service holds asks for its Listener\)\n$/);
  assert.equal(renderXds({ ...base, unavailable: 'UNIMPLEMENTED: Method not found!' }), 'XDS istiod:15012: not served (UNIMPLEMENTED: Method not found!): no services, routes or inbound policy from it\n');
});

test('a stream in backoff shows its failures, the retry and the last error; pending hosts what they wait for; long text is cut', () => {
  const x: XdsStatus = {
    ...base,
    ads: { ...base.ads, stream: { state: 'backoff', failures: 3, retryAt: 10_000, lastError: 'UNAVAILABLE: ' + 'x'.repeat(1000) } },
    hosts: [{ host: 'payments:8080', state: 'pending', waitingFor: 'Listener payments.default.svc.cluster.local:8080' }],
  };
  const out = renderXds(x, 4_000);
  assert.match(out, /^XDS istiod:15012: stream backoff \(3 failed since the last ACK, retrying in 6 s\); last error: UNAVAILABLE: x{287}…$/m);
  assert.match(out, /DISCOVERED HOSTS\n\s+HOST\s+STATE\s+SERVICE\n\s+payments:8080\s+pending\s+-\s+waiting for Listener payments\.default\.svc\.cluster\.local:8080/);
});
