// The xDS half of a thaw (ControlPlane.thaw): after a freeze of XDS_THAW_GAP_MS or more, the ADS
// stream is replaced at once (no backoff, no loss counted), the subscriptions re-sent with their
// ACKed versions, and the thaw waits for the first response, up to XDS_THAW_WAIT_MS, then routes
// with the last good state. A real grpc-js stream to the test ADS server; the clock is virtual.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../src/clock.js';
import { resolveConfig } from '../../src/config.js';
import { AdsTransport } from '../../src/control-plane/xds/ads-transport.js';
import { LISTENER_TYPE_URL as LDS, type Decode } from '../../src/control-plane/xds/discovery.js';
import { searchDomains } from '../../src/control-plane/xds/host-candidates.js';
import { buildNode } from '../../src/control-plane/xds/node.js';
import { XDS_THAW_GAP_MS, XDS_THAW_WAIT_MS, XdsControlPlane } from '../../src/control-plane/xds/xds-control-plane.js';
import { StaticControlPlane } from '../../src/control-plane/static.js';
import { DEFAULT_SERVICE_SETTINGS } from '../../src/outbound/settings.js';
import { startAdsServer } from '../helpers/ads-server.js';
import { waitFor } from '../helpers/net.js';

const node = buildNode({ service: 'fn', namespace: 'default', spiffeId: 'spiffe://cluster.local/ns/default/sa/fn', labels: {}, ip: '10.0.0.9', clusterId: 'Kubernetes', version: '0.1.0' });
const decode: Decode = (_typeUrl, any) => ({ name: Buffer.from(any.value).toString(), value: {} });

test('a thaw after a long freeze opens a new ADS stream at once and waits for its answer (bounded); a short one changes nothing', async (t) => {
  const ads = await startAdsServer(t);
  const clock = new VirtualClock(1_000_000);
  const warnings: string[] = [];
  const logger = { info() {}, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };
  const transport = new AdsTransport({ address: ads.address, root: ads.rootFile, token: 'good-token', clusterId: 'Kubernetes', node, decode, clock, random: () => 0.5, logger });
  const base = await StaticControlPlane.create(resolveConfig({ service: 'fn' }, {}), logger, clock);
  const cp = new XdsControlPlane({
    address: ads.address,
    ads: transport,
    base,
    tree: { trustDomain: 'cluster.local', namespace: 'default', baseSettings: DEFAULT_SERVICE_SETTINGS },
    search: searchDomains({ namespace: 'default' }),
    inboundIp: '10.0.0.9',
    clock,
    logger,
  });
  t.after(() => cp.close());
  transport.session.subscribe(LDS, ['payments:80']);
  cp.start();
  await ads.requests(0, 1);
  ads.streams[0]!.send({ versionInfo: 'L1', nonce: 'n1', typeUrl: LDS, resources: [] });
  await ads.requests(0, 2); // the ACK

  await cp.thaw(XDS_THAW_GAP_MS - 1);
  assert.equal(ads.streams.length, 1, 'a short freeze keeps the stream');

  const thawing = cp.thaw(XDS_THAW_GAP_MS);
  const [first] = await ads.requests(1, 1);
  assert.deepEqual([first!.typeUrl, first!.versionInfo, first!.responseNonce, first!.resourceNames], [LDS, 'L1', '', ['payments:80']], 'the new stream re-sends the ACKed version');
  let done = false;
  void thawing.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, 'the thaw waits for the new stream\'s answer');
  ads.streams[1]!.send({ versionInfo: 'L2', nonce: 'n2', typeUrl: LDS, resources: [] });
  await thawing;
  assert.equal(transport.session.status().stream.failures, 0, 'a restart is not a loss: no backoff next time');
  await waitFor(() => ads.streams[0]!.ended, 5_000, 'the old stream to be cancelled');

  // The control plane is silent after the thaw: routing goes on with what it had, after the bound.
  const silent = cp.thaw(XDS_THAW_GAP_MS * 10);
  await ads.requests(2, 1);
  await clock.advanceAsync(XDS_THAW_WAIT_MS);
  await silent;
  assert.match(warnings.join('\n'), /no response from localhost:\d+ within 1000 ms of a thaw after 300 s frozen: routing with the last configuration received/);
  assert.equal(transport.session.status().types.find((x) => x.typeUrl === LDS)!.ackedVersion, 'L2', 'the last good state is kept');
});
