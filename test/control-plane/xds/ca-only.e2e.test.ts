// A control plane that serves the Istio CA but no ADS (the second stack: Python gRPC C-core's test
// CA answers UNIMPLEMENTED for StreamAggregatedResources). Identity comes from its CA; the ADS
// transport stops for good on UNIMPLEMENTED and says so once; nothing waits for xDS: ports follow
// the local policy alone, unknown hosts follow outbound.egress at once, /config says why.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMesh } from '../../../src/mesh.js';
import { startIstioCa } from '../../helpers/istio-ca-server.js';
import { waitFor } from '../../helpers/net.js';

const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';

test('a CA-only control plane: identity from its CA, no xDS waited for, one warning that says so', async (t) => {
  const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
  const warnings: string[] = [];
  const logger = { info() {}, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };
  const m = await createMesh({ service: 'orders', controlPlane: { address: ca.address, root: ca.rootFile, token: 'tok' }, outbound: { egress: 'deny' }, admin: { port: 0 }, logger }, { env: { INSTANCE_IP: '10.0.0.9' } });
  t.after(() => m.close());
  assert.equal(m.spiffeId, ORDERS);
  await waitFor(() => warnings.some((w) => /does not serve ADS \(UNIMPLEMENTED/.test(w)), 5_000, 'the warning');
  const server = m.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  m.setService('orders', { endpoints: [`127.0.0.1:${port}`] });
  const status = (await m.fetch('http://orders/')).status;
  assert.equal(status, 200, 'the local policy alone: no port waits for an inbound Listener that will never come');
  const started = Date.now();
  await assert.rejects(m.fetch('http://payments.default.svc.cluster.local:8080/'), (e: Error) => (e.cause as { code?: string }).code === 'ERR_SIDECARLESS_EGRESS_DENIED');
  assert.ok(Date.now() - started < 2_000, 'egress decided at once, not after pendingTimeout');
  const config = (await (await fetch(`http://127.0.0.1:${m.admin!.address().port}/config`)).json()) as { xds: { unavailable?: string } };
  assert.match(config.xds.unavailable ?? '', /UNIMPLEMENTED/);
  assert.equal(warnings.filter((w) => /ADS/.test(w)).length, 1, warnings.join('\n'));
});
