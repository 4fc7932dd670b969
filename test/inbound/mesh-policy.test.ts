// Two policy layers over a real mesh server: the local `inbound.policy` and the control plane's
// (an istiod inbound Listener's RBAC, translated), both judged per request, the stricter winning.
// The mesh is built as createMesh builds it (options → static control plane → dev-CA identity →
// parts) so snapshots can be applied through its reconciler, as the xDS wiring will; clients are
// node:https with dev-CA certificates over real mTLS.
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent, type Server, request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { type Logger, resolveConfig } from '../../src/config.js';
import { systemClock } from '../../src/clock.js';
import { StaticControlPlane } from '../../src/control-plane/static.js';
import type { MeshSnapshot } from '../../src/control-plane/snapshot.js';
import { translateInbound } from '../../src/control-plane/xds/translate/inbound.js';
import { formatReasons } from '../../src/control-plane/xds/translate/result.js';
import { PolicyError } from '../../src/errors.js';
import { type DevCa, type IssuedSvid, createDevCa } from '../../src/identity/dev-ca.js';
import { type AuditRecord } from '../../src/inbound/policy-gate.js';
import { peerOf } from '../../src/inbound/peer-of.js';
import { openSource } from '../../src/mesh/identity.js';
import { type MeshParts, buildParts } from '../../src/mesh/parts.js';
import { decodeListener } from '../../src/proto/envoy/config/listener/v3/listener.js';
import type { Policy } from '../../src/policy/index.js';
import { type InboundShape, OWN, inboundListener, istioPolicy } from '../helpers/istio-rbac.js';
import { LOOPBACK, closeServer, listen } from '../helpers/net.js';

const TD = 'cluster.local';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const id = (sa: string, ns = 'default') => `spiffe://${TD}/ns/${ns}/sa/${sa}`;
const WEB = id('web');
const DB = id('db', 'prod');

let ca: DevCa;
const svid: Record<string, IssuedSvid> = {};
const open: Array<() => Promise<void>> = [];
before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  for (const s of [WEB, DB]) svid[s] = await ca.issue({ spiffeId: s });
});
after(async () => {
  for (const c of open.splice(0).reverse()) await c();
});

interface Rig {
  parts: MeshParts;
  port: number;
  audits: AuditRecord[];
  apply(meshPolicy: Policy | undefined, version: string): MeshSnapshot;
  get(from: string, path: string): Promise<number>;
}

/** The local policy: deny /local-deny, audit /audited; default all-authenticated. */
const LOCAL = {
  rules: [
    { name: 'local-deny', action: 'deny', to: [{ paths: ['/local-deny'] }] },
    { name: 'local-audit', action: 'audit', to: [{ paths: ['/audited'] }] },
  ],
};

async function rig(): Promise<Rig> {
  const audits: AuditRecord[] = [];
  const config = resolveConfig({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: LOCAL, audit: (r: AuditRecord) => audits.push(r) } } as never, {});
  const controlPlane = await StaticControlPlane.create(config, quiet, systemClock);
  const identity = await openSource(config, quiet, systemClock);
  const parts = await buildParts({ config, identity, controlPlane, clock: systemClock, logger: quiet });
  const server: Server = parts.inbound.servers.createServer((req: IncomingMessage, res: ServerResponse) => res.end(peerOf(req)?.spiffeId ?? ''));
  const port = await listen(server);
  const agents = new Map<string, Agent>();
  open.push(async () => {
    for (const a of agents.values()) a.destroy();
    await closeServer(server);
    await controlPlane.close();
    await parts.inbound.close();
    await parts.outbound.close();
    parts.clientTls.close();
    if (parts.owned) await parts.source.close();
    parts.offTelemetry();
  });
  return {
    parts,
    port,
    audits,
    apply(meshPolicy, version) {
      const cur = parts.reconciler.current!;
      const { meshPolicy: _old, ...inbound } = cur.inbound;
      const next: MeshSnapshot = { ...cur, version, source: 'xds:test', inbound: meshPolicy === undefined ? inbound : { ...inbound, meshPolicy } };
      parts.reconciler.apply(next);
      return next;
    },
    get(from, path) {
      let agent = agents.get(from);
      if (agent === undefined) {
        const c = svid[from]!;
        agents.set(from, (agent = new Agent({ keepAlive: true, cert: c.certChainPem, key: c.keyPem, ca: ca.bundlePem, checkServerIdentity: () => undefined })));
      }
      return new Promise<number>((resolve, reject) => {
        const q = httpsRequest({ host: LOOPBACK, port, path, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        q.on('error', reject);
        q.end();
      });
    },
  };
}

/** What istiod would send: DENY /mesh-deny and /audited; ALLOW only web. Translated as the xDS client will. */
function istiodPolicy(shape: InboundShape = {
  deny: { 'ns[default]-policy[no-mesh]-rule[0]': istioPolicy({ to: [{ paths: ['/mesh-deny', '/audited'] }] }) },
  allow: { 'ns[default]-policy[web-only]-rule[0]': istioPolicy({ from: [{ principals: ['cluster.local/ns/default/sa/web'] }] }) },
}): Policy {
  const t = translateInbound(decodeListener(inboundListener(OWN, shape)));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  return t.value.policy;
}

describe('local inbound.policy and the control plane\'s policy together: both must allow', () => {
  test('without a control-plane policy the mesh behaves as before', async () => {
    const r = await rig();
    assert.equal(await r.get(WEB, '/ok'), 200);
    assert.equal(await r.get(DB, '/ok'), 200);
    assert.equal(await r.get(WEB, '/local-deny'), 403);
    assert.equal(await r.get(WEB, '/mesh-deny'), 200);
    assert.equal(r.parts.inbound.policyStatus().meshPolicy, undefined);
    assert.equal(r.audits[0], undefined);
    assert.equal(await r.get(WEB, '/audited'), 200);
    assert.equal(r.audits.at(-1)!.layer, undefined, 'one layer: records unchanged');
  });

  test('the combination table, then back to one layer, over real mTLS', async () => {
    const r = await rig();
    r.apply(istiodPolicy(), 'x1');
    // local allow + xDS allow → allow
    assert.equal(await r.get(WEB, '/ok'), 200);
    // local allow + xDS deny (a DENY policy) → deny
    assert.equal(await r.get(WEB, '/mesh-deny'), 403);
    // local allow + xDS deny (no ALLOW policy matches) → deny
    assert.equal(await r.get(DB, '/ok'), 403);
    // local deny + xDS allow → deny
    assert.equal(await r.get(WEB, '/local-deny'), 403);
    const byRule = r.parts.inbound.stats().authz.byRule;
    assert.equal(byRule['ns[default]-policy[no-mesh]-rule[0]']?.deny, 1, 'the mesh layer\'s DENY rule is named');
    assert.equal(byRule['no-allow-match']?.deny, 1);
    assert.equal(byRule['local-deny']?.deny, 1);
    // Audit records name the layer that decided and the control plane's rule.
    assert.equal(await r.get(WEB, '/audited'), 403);
    const rec = r.audits.at(-1)!;
    assert.deepEqual([rec.decision, rec.rule, rec.layer, rec.meshRule, rec.audit], ['deny', 'ns[default]-policy[no-mesh]-rule[0]', 'mesh', 'ns[default]-policy[no-mesh]-rule[0]', ['local-audit']]);
    const status = r.parts.inbound.policyStatus();
    assert.equal(status.meshPolicy?.rules.length, 2);
    assert.equal(status.policy.rules[0]!.name, 'local-deny');
    // The control plane withdraws its policy: back to the local layer alone.
    r.apply(undefined, 'x2');
    assert.equal(await r.get(DB, '/ok'), 200);
    assert.equal(await r.get(WEB, '/mesh-deny'), 200);
    assert.equal(r.parts.inbound.policyStatus().meshPolicy, undefined);
  });

  test('the control plane\'s allow-nothing denies everyone, whatever the local policy allows; no RBAC at all allows', async () => {
    const r = await rig();
    r.apply(istiodPolicy({ allow: {} }), 'n1');
    assert.equal(await r.get(WEB, '/ok'), 403);
    r.apply(istiodPolicy({}), 'n2');
    assert.equal(await r.get(WEB, '/ok'), 200);
    assert.equal(await r.get(WEB, '/local-deny'), 403, 'the local layer still applies');
  });

  test('a control-plane policy that does not compile rejects the whole snapshot and keeps both previous layers', async () => {
    const r = await rig();
    r.apply(istiodPolicy(), 'g1');
    const bad = { rules: [{ name: 'bad', action: 'allow', from: [{ identities: ['web'] }], to: [], when: [] }], servers: [] } as unknown as Policy;
    const cur = r.parts.reconciler.current!;
    assert.throws(
      () => r.apply(bad, 'g2'),
      (e: unknown) => e instanceof PolicyError && e.issues[0]!.path === 'meshPolicy.rules[0].from[0].identities[0]',
    );
    assert.equal(r.parts.reconciler.current, cur, 'the previous snapshot is kept');
    const rejected = r.parts.reconciler.lastRejected!;
    assert.equal(rejected.version, 'g2');
    assert.match(rejected.error, /rejected, keeping version g1:\n  - inbound\.meshPolicy: invalid control-plane policy/);
    assert.equal(await r.get(WEB, '/mesh-deny'), 403, 'the previous control-plane layer still judges');
    assert.equal(await r.get(DB, '/ok'), 403);
    assert.equal(await r.get(WEB, '/local-deny'), 403);
    assert.equal(await r.get(WEB, '/ok'), 200);
  });
});
