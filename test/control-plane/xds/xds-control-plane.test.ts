// XdsControlPlane over a real AdsSession in virtual time (no socket): the table of discovered hosts
// makes room by forgetting hosts known not to exist, never ones that exist or are still pending.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../../src/clock.js';
import type { Node } from '../../../src/proto/envoy/config/core/v3/base.js';
import { AdsSession, DOES_NOT_EXIST_TIMEOUT_MS } from '../../../src/control-plane/xds/ads-state.js';
import { LISTENER_TYPE_URL } from '../../../src/control-plane/xds/discovery.js';
import { searchDomains } from '../../../src/control-plane/xds/host-candidates.js';
import { MAX_DISCOVERED_HOSTS, XdsControlPlane } from '../../../src/control-plane/xds/xds-control-plane.js';
import { StaticControlPlane } from '../../../src/control-plane/static.js';
import { resolveConfig } from '../../../src/config.js';
import { DEFAULT_SERVICE_SETTINGS } from '../../../src/outbound/settings.js';

const quiet = { info() {}, warn() {}, error() {} };
/** A small table (the default, MAX_DISCOVERED_HOSTS, is what createMesh uses; the 1,001-host case runs in attack.e2e). */
const LIMIT = 40;

test(`a full table (default ${MAX_DISCOVERED_HOSTS}) forgets the oldest host known not to exist, then binds the new one; pending hosts are never forgotten`, async () => {
  const clock = new VirtualClock(0);
  const session = new AdsSession<Node>({ node: {} as Node, clock, random: () => 0.5 });
  const writes: Array<{ typeUrl: string; resourceNames: readonly string[] }> = [];
  const config = resolveConfig({ service: 'client' }, {});
  const base = await StaticControlPlane.create(config, quiet, clock);
  const cp = new XdsControlPlane({
    address: 'istiod:15012',
    ads: { session, start() {}, close: () => session.close() },
    base,
    tree: { trustDomain: 'cluster.local', namespace: 'default', baseSettings: DEFAULT_SERVICE_SETTINGS },
    search: searchDomains({ namespace: 'default' }),
    inboundIp: '10.0.0.9',
    maxHosts: LIMIT,
    clock,
    logger: quiet,
  });
  const stream = session.connect((r) => writes.push(r));
  stream.ready();
  const ask = (h: string) => cp.discover(h, 'http:', 0);
  for (let i = 0; i < LIMIT; i++) assert.equal((await ask(`gone${i}.example.test:80`)).kind, 'pending');
  assert.deepEqual(await ask('new.example.test:80'), { kind: 'pending', waitingFor: `room: more than ${LIMIT} hosts were asked for` }, 'every bound host is still pending: nothing is forgotten');
  clock.advance(DOES_NOT_EXIST_TIMEOUT_MS);
  assert.equal((await ask('gone0.example.test:80')).kind, 'absent');
  const before = cp.xdsStatus().hosts.length;
  assert.equal((await ask('new.example.test:80')).kind, 'pending', 'bound, its Listener asked for');
  const hosts = cp.xdsStatus().hosts.map((h) => h.host);
  assert.equal(hosts.length, before);
  assert.ok(!hosts.includes('gone0.example.test:80') && hosts.includes('new.example.test:80'), 'the oldest absent host made room');
  const last = writes.filter((w) => w.typeUrl === LISTENER_TYPE_URL).at(-1)!;
  assert.ok(last.resourceNames.includes('new.example.test:80') && !last.resourceNames.includes('gone0.example.test:80'), 'its names unsubscribed, the new ones asked for');
  await cp.close();
});
