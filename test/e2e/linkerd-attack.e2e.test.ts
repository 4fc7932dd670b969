// Over real mTLS: a Linkerd workload whose service account name holds `serviceaccount.identity`
// labels (Kubernetes allows dots in a service account name, and Linkerd issues
// `<sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<td>` for it) must not pass for a workload of
// the namespace those labels name. The server's policy admits namespace `victim` only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/clock.js';
import { type BundleSet, withDnsBundles } from '../../src/identity/bundle.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { createMesh, loadPolicy, peerOf, type Mesh } from '../../src/index.js';
import { CoreBackedSource, SourceCore } from '../../src/sources/source.js';
import { buildSvid } from '../../src/sources/svid-set.js';
import { craftLeaf } from '../helpers/certs.js';
import { closeServer, listen } from '../helpers/net.js';

const D = 'identity.linkerd.cluster.local';
const API = `api.victim.serviceaccount.${D}`;
const VICTIM = `web.victim.serviceaccount.${D}`;
// service account `a.victim.serviceaccount.identity.x.y` of namespace `attacker`
const CRAFTED = `a.victim.serviceaccount.identity.x.y.attacker.serviceaccount.${D}`;
const quiet = { info() {}, warn() {}, error() {} };

class DnsSource extends CoreBackedSource {
  constructor(certChainPem: string, keyPem: string, bundles: BundleSet) {
    super(new SourceCore('linkerd-test', systemClock, 'test Linkerd source'));
    this.core.accept(buildSvid(certChainPem, keyPem, bundles, Date.now()), bundles);
  }
  async close(): Promise<void> {
    this.core.close();
  }
}

let anchors: DevCa;
let bundles: BundleSet;
let port = 0;
const meshes: Mesh[] = [];
const closers: Array<() => Promise<unknown>> = [];

async function meshAs(name: string, service: string, extra: Record<string, unknown> = {}): Promise<Mesh> {
  const leaf = await craftLeaf(anchors, { uris: [], dnsNames: [name] });
  const mesh = await createMesh({ service, identity: { source: new DnsSource(leaf.certChainPem, leaf.keyPem, bundles) }, logger: quiet, ...extra } as never, { dnsIdentity: { name } });
  meshes.push(mesh);
  return mesh;
}

before(async () => {
  anchors = await createDevCa({ trustDomain: 'linkerd.anchors' });
  bundles = withDnsBundles(new Map(), [{ domain: D, anchorsPem: anchors.bundlePem }]);
  const policy = loadPolicy({ rules: [{ name: 'victim-ns-only', action: 'allow', from: { namespaces: ['victim'] } }] });
  const api = await meshAs(API, 'api', { inbound: { policy } });
  const server = api.createServer((req, res) => res.end(JSON.stringify(peerOf(req))));
  port = await listen(server);
  closers.push(() => closeServer(server));
});

after(async () => {
  for (const c of closers) await c();
  for (const m of meshes) await m.close();
});

const to = (identity: string) => ({ outbound: { services: { api: { endpoints: [{ address: `127.0.0.1:${port}`, identity, serverName: identity }] } } } });

test('a workload of namespace victim is admitted, and peerOf reports it', async () => {
  const mesh = await meshAs(VICTIM, 'web', to(API));
  const res = await mesh.fetch('http://api/');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: VICTIM, kind: 'dns', dnsName: VICTIM, trustDomain: 'cluster.local', namespace: 'victim', serviceAccount: 'web' });
});

test('a crafted service account name of namespace attacker is refused (403), not read as namespace victim', async () => {
  const mesh = await meshAs(CRAFTED, 'a', to(API));
  const res = await mesh.fetch('http://api/');
  assert.equal(res.status, 403);
  await res.arrayBuffer();
});
