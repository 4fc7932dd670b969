// Whatever a control plane sends, the translators answer with a value or reasons, never a throw:
// seeded random bytes through the decoders (ProtoError is the decoder's answer), then translation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeOutboundPolicy } from '../../../../src/proto/linkerd/outbound.js';
import { decodeServer } from '../../../../src/proto/linkerd/inbound.js';
import { decodeUpdate } from '../../../../src/proto/linkerd/destination.js';
import { ProtoError } from '../../../../src/proto/wire.js';
import { DestinationState, translateInbound, translateOutbound } from '../../../../src/control-plane/linkerd/translate/index.js';

function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

test('random bytes: decoded or a ProtoError, then translated without a throw', () => {
  const r = rng(42);
  const ctx = { authority: 'web.default.svc.cluster.local:80', namespace: 'default', hostnames: ['web'], identity: 'web.default.serviceaccount.identity.linkerd.cluster.local' };
  const d = new DestinationState('web.default.svc.cluster.local:80');
  let decoded = 0;
  for (let i = 0; i < 3000; i++) {
    const bytes = Uint8Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256));
    for (const [decode, run] of [
      [decodeOutboundPolicy, (m: never) => translateOutbound(m, ctx)],
      [decodeServer, (m: never) => translateInbound(m, { port: 8080 })],
      [decodeUpdate, (m: never) => d.apply(m)],
    ] as const) {
      let m: unknown;
      try {
        m = (decode as (b: Uint8Array) => unknown)(bytes);
      } catch (e) {
        assert.ok(e instanceof ProtoError, String(e));
        continue;
      }
      decoded++;
      const t = (run as unknown as (m: unknown) => { ok: boolean })(m);
      assert.equal(typeof t.ok, 'boolean');
    }
  }
  assert.ok(decoded > 100, `decoded ${decoded}`);
});
