// The incremental validator against the whole-snapshot one: on random sequences of updates (add,
// change, remove services; splits to present, missing and splitting services; hostname clashes;
// endpoints delivered or not) both accept and reject the same snapshots and report the same
// pending references. Seeded randomness: a failure names its seed and step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serviceSchema } from '../../src/config.js';
import { serviceFromConfig } from '../../src/control-plane/from-options.js';
import type { MeshSnapshot, ServiceSnapshot } from '../../src/control-plane/snapshot.js';
import { SnapshotValidator } from '../../src/control-plane/validate-incremental.js';
import { validateSnapshot } from '../../src/control-plane/validate.js';
import { loadPolicy } from '../../src/policy/index.js';
import { seededRandom } from '../../src/random.js';

const ctx = { trustDomain: 'cluster.local', namespace: 'default' };
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];
const INBOUND = { mode: 'strict' as const, defaultPolicy: 'all-authenticated' as const, defaultPolicyExplicit: false, policy: loadPolicy({}) };

function randomService(name: string, rnd: () => number): ServiceSnapshot {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const cfg: Record<string, unknown> = { endpoints: [`10.0.0.${1 + Math.floor(rnd() * 3)}:8443`] };
  const r = rnd();
  if (r < 0.35) cfg.split = [{ service: pick(NAMES), weight: 1 }, ...(rnd() < 0.5 ? [{ service: name, weight: 1 }] : [])].filter((b, i, xs) => xs.findIndex((x) => x.service === b.service) === i);
  else if (r < 0.5) cfg.routes = [{ match: { path: { prefix: '/x' } }, split: [{ service: pick(NAMES), weight: 1 }] }];
  if (rnd() < 0.2) cfg.hostnames = [pick(['shared.example.com', `${name}.example.com`, '*.example.com', 'x.*'])];
  const svc = serviceFromConfig(name, serviceSchema.parse(cfg), ctx);
  return rnd() < 0.15 ? { ...svc, endpoints: undefined } : svc;
}

const sorted = (xs: ReadonlyArray<{ service: string; missing: string; path: string }>) => xs.map((p) => `${p.service} ${p.missing} ${p.path}`).sort();

test('incremental validation agrees with whole-snapshot validation on 4,000 random updates', () => {
  const seen = { accepted: 0, rejected: 0, pending: 0 };
  for (let seed = 1; seed <= 40; seed++) {
    const rnd = seededRandom(seed);
    const v = new SnapshotValidator();
    let accepted: MeshSnapshot = { version: '0', source: 'test', complete: false, inbound: INBOUND, services: new Map() };
    v.check(accepted).commit();
    for (let step = 0; step < 100; step++) {
      const services = new Map(accepted.services);
      const n = 1 + Math.floor(rnd() * 2);
      for (let k = 0; k < n; k++) {
        const name = NAMES[Math.floor(rnd() * NAMES.length)]!;
        if (rnd() < 0.25) services.delete(name);
        else services.set(name, randomService(name, rnd));
      }
      const next: MeshSnapshot = { ...accepted, version: String(step + 1), services };
      const whole = validateSnapshot(next);
      const inc = v.check(next);
      const at = `seed ${seed} step ${step}`;
      assert.equal(inc.issues.length > 0, whole.issues.length > 0, `${at}: accept/reject differ: ${JSON.stringify({ inc: inc.issues, whole: whole.issues })}`);
      if (whole.issues.length > 0) {
        seen.rejected++;
        assert.deepEqual(new Set(inc.issues.map((i) => i.message.replace(/"[^"]*" is also a hostname of "[^"]*"/, 'clash'))), new Set(whole.issues.map((i) => i.message.replace(/"[^"]*" is also a hostname of "[^"]*"/, 'clash'))), at);
        continue;
      }
      assert.deepEqual(sorted(inc.pending), sorted(whole.pending), `${at}: pending differ`);
      seen.accepted++;
      if (whole.pending.length > 0) seen.pending++;
      inc.commit();
      accepted = next;
    }
  }
  // The mix is real: many of each kind.
  assert.ok(seen.accepted > 1000 && seen.rejected > 500 && seen.pending > 500, JSON.stringify(seen));
});

test('a complete snapshot is always checked whole', () => {
  const v = new SnapshotValidator();
  const first: MeshSnapshot = { version: '1', source: 'options', complete: true, inbound: INBOUND, services: new Map([['a', randomService('a', () => 0.9)]]) };
  v.check(first).commit();
  const next: MeshSnapshot = { ...first, services: new Map([...first.services, ['b', serviceFromConfig('b', serviceSchema.parse({ split: [{ service: 'zzz', weight: 1 }] }), ctx)]]) };
  assert.deepEqual(v.check(next).issues.map((i) => i.path), ['b.split.0.service']);
});
