// The ADS server's response serializer (ads-encode.ts) writes exactly the generated codec's bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type DiscoveryResponse, decodeDiscoveryResponse, encodeDiscoveryResponse } from '../../../src/proto/envoy/service/discovery/v3/discovery.js';
import { serializeDiscoveryResponse } from '../../../src/server/xds/ads-encode.js';

const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const res = (o: Partial<DiscoveryResponse>): DiscoveryResponse => ({ versionInfo: 'v1', resources: [], canary: false, typeUrl: CDS, nonce: '7', ...o });

test('serializeDiscoveryResponse: the same bytes as encodeDiscoveryResponse, whatever the sizes, empties and type URLs', () => {
  const cases: DiscoveryResponse[] = [
    res({}),
    res({ versionInfo: '', nonce: '', typeUrl: '' }),
    res({ resources: [{ typeUrl: CDS, value: bytes(3) }, { typeUrl: CDS, value: bytes(200, 2) }, { typeUrl: CDS, value: bytes(20_000, 3) }] }),
    // an empty Any is still an element; another type URL inside; non-ASCII strings; canary
    res({ canary: true, versionInfo: 'vé', nonce: '∞', resources: [{ typeUrl: '', value: new Uint8Array(0) }, { typeUrl: 'type.googleapis.com/x.Y', value: bytes(1) }, { typeUrl: CDS, value: new Uint8Array(0) }] }),
    res({ resources: Array.from({ length: 300 }, (_, i) => ({ typeUrl: CDS, value: bytes(i, i) })) }),
    res({ controlPlane: { identifier: 'cp' } }),
  ];
  for (const r of cases) {
    const want = Buffer.from(encodeDiscoveryResponse(r));
    const got = serializeDiscoveryResponse(r);
    assert.ok(got.equals(want), `differs for ${r.resources.length} resources, canary ${r.canary}`);
    assert.deepEqual(decodeDiscoveryResponse(got).resources.length, r.resources.length);
  }
});
