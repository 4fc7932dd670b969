// The transport-neutral gate (PolicyGate.decide(PolicyRequest)) and the pipeline that cannot be
// built without it: a missing authorize step is a type error and a constructor error, never
// "admit everything"; over real TLS, the gate a pipeline is built with decides every request.
import assert from 'node:assert/strict';
import { AuthzCounters } from '../../src/telemetry/derive.js';
import { MeshEvents } from '../../src/telemetry/events.js';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { before, describe, test } from 'node:test';
import { systemClock } from '../../src/clock.js';
import { createDevCa, type DevCa } from '../../src/identity/dev-ca.js';
import { judgeHttp1 } from '../../src/inbound/http1/judge.js';
import { InboundPipeline } from '../../src/inbound/pipeline.js';
import { type AuditRecord, PolicyGate } from '../../src/inbound/policy-gate.js';
import { guardServer } from '../../src/inbound/server-guard.js';
import { type Decision, type PolicyRequest } from '../../src/policy/index.js';
import { EXPRESS_ROUTING } from '../../src/policy/router-semantics.js';
import { PeerVerifier } from '../../src/tls/peer.js';
import { ServerTls } from '../../src/tls/server-context.js';
import { ManualSource, TD, filesOf, idOf } from '../helpers/certs.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';

const peer = (sa: string) => ({ id: idOf(sa), kind: 'spiffe' as const, spiffeId: idOf(sa), trustDomain: TD, namespace: 'default', serviceAccount: sa });
const request = (o: Partial<PolicyRequest> = {}): PolicyRequest => ({
  peer: peer('web'),
  sourceIp: '10.0.0.1',
  method: 'GET',
  path: '/x',
  host: 'payments',
  port: 8443,
  header: () => undefined,
  ...o,
});

/** A gate over its own event bus; `stats` are derived from what it publishes (telemetry/derive.ts). */
function gateOf(policy: unknown, told: Array<[Decision, unknown]> = [], audit: AuditRecord[] = []) {
  const events = new MeshEvents('payments');
  const counters = new AuthzCounters(events);
  events.on('authz', (d, _subject, req) => void told.push([d as Decision, req]));
  const gate = new PolicyGate<string>(
    { defaultPolicy: 'all-authenticated', trustDomain: TD, namespace: 'default', labels: {}, audit: (r) => audit.push(r), events },
    policy,
  );
  return Object.assign(gate, { stats: counters.stats });
}

describe('PolicyGate.decide: a PolicyRequest in, a Decision out (no node:http)', () => {
  test('allow, deny, counted and told with the transport’s subject; audit records', () => {
    const told: Array<[Decision, unknown]> = [];
    const audit: AuditRecord[] = [];
    const gate = gateOf({ rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin*'] } }, { name: 'seen', action: 'audit', to: { paths: ['/x'] } }] }, told, audit);
    const allowed = gate.decide(request(), { subject: 'stream 1' });
    assert.equal(allowed.allowed, true);
    const denied = gate.decide(request({ path: '/admin/keys' }), { subject: 'stream 3' });
    assert.deepEqual([denied.allowed, denied.rule], [false, 'no-admin']);
    assert.deepEqual(told.map(([d, s]) => [d.allowed, s]), [[true, 'stream 1'], [false, 'stream 3']]);
    assert.deepEqual([gate.stats.allowed, gate.stats.denied], [1, 1]);
    assert.deepEqual(audit.map((a) => [a.decision, a.path, a.peer]), [['allow', '/x', idOf('web')]]);
    // The unauthenticated peer: the default (all-authenticated) denies.
    assert.equal(gate.decide(request({ peer: null })).allowed, false);
  });

  test('a recheck that still admits is neither counted nor told; one that denies is', () => {
    const told: Array<[Decision, unknown]> = [];
    const gate = gateOf({ rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }] }, told);
    assert.equal(gate.decide(request(), { recheck: true }).allowed, true);
    assert.deepEqual([gate.stats.allowed, told.length], [0, 0]);
    assert.equal(gate.decide(request({ path: '/admin' }), { recheck: true }).allowed, false);
    assert.deepEqual([gate.stats.denied, told.length], [1, 1]);
  });

  test('router semantics: the spellings a router serves alike are judged by DENY rules', () => {
    const gate = gateOf({ rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }] });
    assert.equal(gate.decide(request({ path: '/ADMIN/' })).allowed, true, 'exact routing: another path');
    assert.equal(gate.decide(request({ path: '/ADMIN/' }), { routing: EXPRESS_ROUTING }).allowed, false, 'Express serves /ADMIN/ from /admin');
  });

  test('setDefaultPolicy swaps the default with the policy kept; the version stays', () => {
    const gate = gateOf({ rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }] });
    const v = gate.version;
    assert.equal(gate.decide(request({ peer: null })).allowed, false);
    gate.setDefaultPolicy('all-unauthenticated');
    assert.equal(gate.defaultPolicy, 'all-unauthenticated');
    assert.equal(gate.decide(request({ peer: null })).allowed, true);
    assert.equal(gate.decide(request({ peer: null, path: '/admin' })).allowed, false, 'the rules still hold');
    assert.equal(gate.version, v);
    gate.setDefaultPolicy('deny');
    assert.equal(gate.decide(request()).allowed, false);
  });
});

describe('PolicyGate with the control plane\'s layer (meshPolicy): both must allow', () => {
  const MESH = { rules: [
    { name: 'xds-deny', action: 'deny', to: [{ paths: ['/mesh-deny'] }] },
    { name: 'xds-allow', action: 'allow', from: [{ identities: [idOf('web')] }] },
  ], servers: [] };
  test('the first layer that denies decides and is named; an allow names the control plane\'s rule; decisions are precomputed', () => {
    const gate = gateOf({ rules: [{ name: 'local-deny', action: 'deny', to: { paths: ['/local-deny'] } }] });
    gate.set(gate.policy, MESH as never);
    const ok = gate.decide(request());
    assert.deepEqual([ok.allowed, ok.rule, ok.layer, ok.meshRule], [true, 'default:all-authenticated', 'local', 'xds-allow']);
    assert.equal(gate.decide(request()), ok, 'the same frozen object: nothing allocated per request');
    assert.ok(Object.isFrozen(ok));
    const m = gate.decide(request({ path: '/mesh-deny' }));
    assert.deepEqual([m.allowed, m.rule, m.layer], [false, 'xds-deny', 'mesh']);
    const l = gate.decide(request({ path: '/local-deny' }));
    assert.deepEqual([l.allowed, l.rule, l.layer, l.meshRule], [false, 'local-deny', 'local', 'xds-allow']);
    const other = gate.decide(request({ peer: peer('db') }));
    assert.deepEqual([other.allowed, other.rule, other.layer], [false, 'no-allow-match', 'mesh']);
    assert.deepEqual([gate.stats.allowed, gate.stats.denied], [2, 3]);
  });

  test('setDefaultPolicy changes the local layer only; set() without meshPolicy drops the layer; a bad layer keeps everything', () => {
    const gate = gateOf({});
    gate.set({}, { rules: [], servers: [] });
    assert.equal(gate.decide(request({ peer: null })).allowed, false, 'local default all-authenticated');
    gate.setDefaultPolicy('all-unauthenticated');
    const d = gate.decide(request({ peer: null }));
    assert.deepEqual([d.allowed, d.layer, d.meshRule], [true, 'local', 'default:all-unauthenticated'], 'the control plane\'s layer with no rules allows');
    const before = gate.version;
    assert.throws(() => gate.set({ rules: [{ action: 'deny' }] }, { rules: [{ name: 'x', action: 'nope' }] } as never), (e: Error & { issues?: Array<{ path: string }> }) => e.issues?.[0]?.path === 'meshPolicy.rules[0].action');
    assert.equal(gate.version, before);
    assert.deepEqual(gate.policy, { rules: [], servers: [] });
    assert.deepEqual(gate.meshPolicy, { rules: [], servers: [] });
    gate.set({});
    assert.equal(gate.meshPolicy, undefined);
    assert.equal(gate.decide(request({ peer: null })).layer, undefined);
  });
});

describe('InboundPipeline: no gate, no pipeline', () => {
  let ca: DevCa;
  let source: ManualSource;
  let tls: ServerTls;
  before(async () => {
    ca = await createDevCa();
    source = new ManualSource();
    source.set(filesOf(await ca.issue({ spiffeId: idOf('payments') })));
    tls = new ServerTls(source, new PeerVerifier(() => source.getBundles(), systemClock), 'strict');
  });

  test('without authorize it does not type-check, and does not construct', () => {
    const build = (deps: unknown) => () => new InboundPipeline(deps as ConstructorParameters<typeof InboundPipeline>[0]);
    // @ts-expect-error authorize is a required collaborator
    assert.throws(() => new InboundPipeline({ tls }), /`authorize`.*required/);
    for (const deps of [{ tls, authorize: undefined }, { tls, authorize: null }, { tls, authorize: 'allow' }, { tls, authorize: {} }, undefined, {}]) {
      assert.throws(build(deps), TypeError, JSON.stringify(deps));
    }
    // @ts-expect-error tls is required too
    assert.throws(() => new InboundPipeline({ authorize: () => ({ ok: true }) }), /`tls`.*required/);
  });

  test('over real TLS, the gate it is built with decides every request (deny → 403, the app never runs)', async () => {
    let calls = 0;
    const decide = (defaultPolicy: 'deny' | 'all-authenticated') => {
      const gate = new PolicyGate<IncomingMessage>({ defaultPolicy, trustDomain: TD, namespace: 'default', labels: {}, audit: () => {}, events: new MeshEvents('payments') });
      return new InboundPipeline({ tls, authorize: (req, p, routing, recheck) => judgeHttp1(gate, req, p, routing, recheck) });
    };
    const client = await ca.issue({ spiffeId: idOf('web') });
    for (const [dp, expected] of [['deny', 403], ['all-authenticated', 200]] as const) {
      const server = createHttpsServer(tls.options(), (_req: IncomingMessage, res: ServerResponse) => {
        calls++;
        res.end('app');
      });
      tls.attach(server);
      guardServer(server, decide(dp), { firstRequestTimeoutMs: 0, clock: systemClock, onUnsafe: () => {} });
      const port = await listen(server);
      try {
        const before = calls;
        const res = await rawTlsRequest({ port, cert: client.certChainPem, key: client.keyPem, request: 'GET /x HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n' });
        assert.equal(res.status, expected, `${dp}: ${res.response}`);
        assert.equal(calls - before, expected === 200 ? 1 : 0);
        const bad = await rawTlsRequest({ port, cert: client.certChainPem, key: client.keyPem, request: 'GET /a%2Fb HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n' });
        assert.equal(bad.status, 400, 'the HTTP/1.1 checks run before the gate');
      } finally {
        await closeServer(server);
      }
    }
  });
});
