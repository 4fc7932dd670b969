// The policy gate over real TLS: Istio and Linkerd documents loaded as they are enforce what their
// native translations enforce; default policies; mesh.setPolicy swaps atomically under load and
// rejects an invalid policy whole; a watched policy file; audit records; decision counters.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent, type Server, request as httpsRequest } from 'node:https';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DevCa, type IssuedSvid, type Mesh, PolicyError, createDevCa, createMesh, peerOf } from '../../src/index.js';
import { type AuditRecord } from '../../src/inbound/policy-gate.js';
import { type Logger } from '../../src/config.js';
import { ManualSource, filesOf, tempDir } from '../helpers/certs.js';
import { LOOPBACK, closeServer, listen, rawTlsRequest, waitFor } from '../helpers/net.js';

const TD = 'cluster.local';
const OTHER_TD = 'other.example';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const id = (sa: string, ns = 'default', td = TD) => `spiffe://${td}/ns/${ns}/sa/${sa}`;

type Options = Parameters<typeof createMesh>[0];
type Who = IssuedSvid | null;

interface Running {
  mesh: Mesh;
  servers: Server[];
  ports: number[];
  calls: number;
}

const running: Running[] = [];
after(async () => {
  for (const r of running.splice(0)) await stopMesh(r);
});

async function stopMesh(r: Running): Promise<void> {
  for (const s of r.servers) await closeServer(s);
  await r.mesh.close();
}

function app(state: { calls: number }) {
  return (req: IncomingMessage, res: ServerResponse) => {
    state.calls++;
    res.end(JSON.stringify({ url: req.url, peer: peerOf(req)?.spiffeId ?? null }));
  };
}

/** createMesh + one server per entry of `ports` (0 = any free port). */
async function startMesh(options: Options, ports: number[] = [0]): Promise<Running> {
  const mesh = await createMesh({ logger: quiet, ...options } as Options);
  const r: Running = { mesh, servers: [], ports: [], calls: 0 };
  running.push(r);
  for (const p of ports) {
    const server = mesh.createServer(app(r));
    r.servers.push(server);
    r.ports.push(p === 0 ? await listen(server) : await listenOn(server, p));
  }
  return r;
}

function listenOn(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK, () => resolve(port));
  });
}

/** A free loopback port (for a policy that names the port before the server listens). */
async function freePort(): Promise<number> {
  const s = createNetServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

async function status(r: Running, who: Who, path: string, o: { method?: string; headers?: string; port?: number } = {}): Promise<number | undefined> {
  const res = await rawTlsRequest({
    port: o.port ?? r.ports[0]!,
    request: `${o.method ?? 'GET'} ${path} HTTP/1.1\r\nHost: svc\r\n${o.headers ?? ''}Connection: close\r\n\r\n`,
    ...(who && { cert: who.certChainPem, key: who.keyPem }),
  });
  return res.status;
}

let ca: DevCa;
let caOther: DevCa;
const svid: Record<string, IssuedSvid> = {};
const who = (spiffeId: string) => svid[spiffeId]!;

const SLEEP = id('sleep');
const TEST_NS = id('any', 'test');
const PROD_SLEEP = id('sleep', 'prod');
const BOOKS = id('books', 'booksapp');
const WEBAPP = id('webapp', 'booksapp');
const OTHER_IN_NS = id('other', 'booksapp');
const WEBAPP_ELSEWHERE = id('webapp', 'elsewhere');
const WEB = id('web');
const FOREIGN = id('web', 'default', OTHER_TD);

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  caOther = await createDevCa({ trustDomain: OTHER_TD });
  for (const s of [SLEEP, TEST_NS, PROD_SLEEP, BOOKS, WEBAPP, OTHER_IN_NS, WEBAPP_ELSEWHERE, WEB]) svid[s] = await ca.issue({ spiffeId: s });
  svid[FOREIGN] = await caOther.issue({ spiffeId: FOREIGN });
});

/** A source for `spiffeId`, federated with OTHER_TD (so a foreign client is authenticated). */
async function federatedSource(spiffeId: string): Promise<ManualSource> {
  const source = new ManualSource();
  source.set(filesOf(await ca.issue({ spiffeId }), caOther.bundlePem));
  return source;
}

describe('Istio AuthorizationPolicy as it is ≡ its native translation', () => {
  const ISTIO = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: ALLOW
  rules:
  - from:
    - source: { principals: ["cluster.local/ns/default/sa/sleep"] }
    - source: { namespaces: ["test"] }
    to:
    - operation: { methods: ["GET"], paths: ["/info*"] }
    when:
    - key: request.headers[x-version]
      values: ["v1"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-secret, namespace: foo }
spec:
  action: DENY
  rules:
  - to: [{ operation: { paths: ["/info/secret*"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: elsewhere, namespace: bar }
spec:
  rules: [{}]
`;
  const NATIVE = `rules:
- name: foo/httpbin#0
  action: allow
  namespace: foo
  selector: { matchLabels: { app: httpbin } }
  from: [{ identities: ["spiffe://cluster.local/ns/default/sa/sleep"] }, { namespaces: ["test"] }]
  to: [{ methods: ["GET"], paths: ["/info*"] }]
  when: [{ headers: { x-version: ["v1"] } }]
- name: foo/deny-secret#0
  action: deny
  namespace: foo
  to: [{ paths: ["/info/secret*"] }]
- name: bar/elsewhere#0
  action: allow
  namespace: bar
`;
  const V1 = 'x-version: v1\r\n';
  const corpus: Array<[string, string, { method?: string; headers?: string }, number]> = [
    [SLEEP, '/info', { headers: V1 }, 200],
    [SLEEP, '/info/x', { headers: V1 }, 200],
    [SLEEP, '/infox', { headers: V1 }, 200],
    [SLEEP, '/public/../info', { headers: V1 }, 200],
    [SLEEP, '/info', {}, 403],
    [SLEEP, '/info', { headers: 'x-version: v2\r\n' }, 403],
    [SLEEP, '/info', { headers: 'x-version: V1\r\n' }, 403],
    [SLEEP, '/info', { method: 'POST', headers: V1 }, 403],
    [SLEEP, '/Info', { headers: V1 }, 403],
    [SLEEP, '/info/secret', { headers: V1 }, 403],
    [SLEEP, '/info/%73ecret/x', { headers: V1 }, 403],
    [SLEEP, '/other', { headers: V1 }, 403],
    [TEST_NS, '/info', { headers: V1 }, 200],
    [PROD_SLEEP, '/info', { headers: V1 }, 403],
    [WEB, '/info', { headers: V1 }, 403],
  ];

  test('the same statuses for the whole corpus, and the rule names match', async () => {
    const base: Options = { service: 'httpbin', namespace: 'foo', labels: { app: 'httpbin' }, identity: { ca } };
    const istio = await startMesh({ ...base, inbound: { policy: ISTIO } });
    const native = await startMesh({ ...base, inbound: { policy: NATIVE } });
    for (const [from, path, o, expected] of corpus) {
      const got = [await status(istio, who(from), path, o), await status(native, who(from), path, o)];
      assert.deepEqual(got, [expected, expected], `${from} ${o.method ?? 'GET'} ${path} ${o.headers ?? ''}`);
    }
    assert.equal(istio.calls, native.calls);
    const rules = (m: Running) => Object.fromEntries(Object.entries(m.mesh.stats().inbound.authz.byRule).map(([k, v]) => [k, v]));
    assert.deepEqual(rules(istio), rules(native));
    assert.ok(rules(istio)['foo/deny-secret#0']!.deny >= 2);
    assert.equal(rules(istio)['bar/elsewhere#0'], undefined, 'a policy of another namespace never decides');
  });

  test('a workload the selector does not pick is not governed by it (its default policy decides)', async () => {
    const other = await startMesh({ service: 'other', namespace: 'foo', labels: { app: 'other' }, identity: { ca }, inbound: { policy: ISTIO, defaultPolicy: 'deny' } });
    assert.equal(await status(other, who(SLEEP), '/info', { headers: V1 }), 403);
    assert.equal(await status(other, who(SLEEP), '/info/secret'), 403, 'the namespace-wide DENY still applies');
    assert.deepEqual(Object.keys(other.mesh.stats().inbound.authz.byRule).sort(), ['default:deny', 'foo/deny-secret#0']);
  });
});

describe('Linkerd Server/HTTPRoute/AuthorizationPolicy/MeshTLSAuthentication as they are ≡ the native translation', () => {
  const linkerd = (port: number) => `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: { name: authors-server, namespace: booksapp }
spec:
  podSelector: { matchLabels: { app: authors } }
  port: ${port}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: { name: authors-get-route, namespace: booksapp }
spec:
  parentRefs: [{ name: authors-server, kind: Server, group: policy.linkerd.io }]
  rules:
  - matches:
    - path: { value: "/authors.json" }
      method: GET
    - path: { value: "/authors/", type: PathPrefix }
      method: GET
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: probe-route, namespace: booksapp }
spec:
  parentRefs: [{ name: authors-server, kind: Server, group: policy.linkerd.io }]
  rules:
  - matches:
    - path: { value: "/ping", type: Exact }
      method: GET
      headers: [{ name: X-Probe, value: "1" }]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: authors-get-policy, namespace: booksapp }
spec:
  targetRef: { group: policy.linkerd.io, kind: HTTPRoute, name: authors-get-route }
  requiredAuthenticationRefs:
  - { name: authors-get-authn, kind: MeshTLSAuthentication, group: policy.linkerd.io }
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: { name: authors-get-authn, namespace: booksapp }
spec:
  identities: ["books.booksapp.serviceaccount.identity.linkerd.cluster.local"]
  identityRefs: [{ kind: ServiceAccount, name: webapp }]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: probe-policy, namespace: booksapp }
spec:
  targetRef: { group: gateway.networking.k8s.io, kind: HTTPRoute, name: probe-route }
  requiredAuthenticationRefs: []
`;
  const native = (port: number) => `servers:
- name: booksapp/authors-server
  namespace: booksapp
  selector: { matchLabels: { app: authors } }
  ports: [${port}]
  accessPolicy: deny
  routes:
  - { methods: [GET], paths: ["/authors.json", "/authors.json/*"] }
  - { methods: [GET], paths: ["/authors", "/authors/*"] }
  - { methods: [GET], paths: ["/ping"], headers: { x-probe: ["1"] } }
  rules:
  - name: booksapp/authors-get-policy
    action: allow
    from: [{ identities: ["${BOOKS}"] }, { serviceAccounts: ["booksapp/webapp"] }]
    to: [{ methods: [GET], paths: ["/authors.json", "/authors.json/*"] }, { methods: [GET], paths: ["/authors", "/authors/*"] }]
  - name: booksapp/probe-policy
    action: allow
    to: [{ methods: [GET], paths: ["/ping"], headers: { x-probe: ["1"] } }]
`;
  const corpus: Array<[string | null, string, { method?: string; headers?: string }, number]> = [
    [BOOKS, '/authors.json', {}, 200],
    [BOOKS, '/authors', {}, 200],
    [BOOKS, '/authors/1', {}, 200],
    [BOOKS, '/authors/1/../2', {}, 200],
    [BOOKS, '/authorsx', {}, 403],
    // A path match without a type is a PathPrefix (the Gateway API default), element-wise.
    [BOOKS, '/authors.json/x', {}, 200],
    [BOOKS, '/authors.jsonx', {}, 403],
    [BOOKS, '/authors/1', { method: 'POST' }, 403],
    [BOOKS, '/other', {}, 403],
    [WEBAPP, '/authors/1', {}, 200],
    [OTHER_IN_NS, '/authors/1', {}, 403],
    [WEBAPP_ELSEWHERE, '/authors/1', {}, 403],
    [null, '/authors/1', {}, 403],
    [null, '/ping', { headers: 'X-Probe: 1\r\n' }, 200],
    [null, '/ping', {}, 403],
    [BOOKS, '/ping', { headers: 'x-probe: 2\r\n' }, 403],
    [BOOKS, '/ping', { headers: 'x-probe: 1\r\n' }, 200],
  ];

  test('the same statuses on the Server’s port; another port is left to the default policy', async () => {
    // The Server names a port, so the policy is written for the port the mesh will listen on.
    const base = { service: 'authors', namespace: 'booksapp', labels: { app: 'authors' }, identity: { ca } } as const;
    const [pL, pN] = [await freePort(), await freePort()];
    const inbound = { mode: 'permissive', defaultPolicy: 'deny' } as const;
    const l5d = await startMesh({ ...base, inbound: { ...inbound, policy: linkerd(pL) } }, [pL, 0]);
    const nat = await startMesh({ ...base, inbound: { ...inbound, policy: native(pN) } }, [pN, 0]);
    for (const [from, path, o, expected] of corpus) {
      const w = from === null ? null : who(from);
      const got = [await status(l5d, w, path, o), await status(nat, w, path, o)];
      assert.deepEqual(got, [expected, expected], `${from ?? 'plaintext'} ${o.method ?? 'GET'} ${path} ${o.headers ?? ''}`);
    }
    // Another port: no Server covers it, so inbound.defaultPolicy ('deny') decides.
    for (const r of [l5d, nat]) {
      assert.equal(await status(r, who(BOOKS), '/authors/1', { port: r.ports[1]! }), 403);
      assert.ok((r.mesh.stats().inbound.authz.byRule['default:deny']?.deny ?? 0) >= 1);
    }
    const rules = (m: Running) => m.mesh.stats().inbound.authz.byRule;
    assert.deepEqual(rules(l5d), rules(nat));
    assert.ok(rules(l5d)['no-route']!.deny >= 3, JSON.stringify(rules(l5d)));
  });
});

describe('default policies over real TLS', () => {
  const base = (mode: 'strict' | 'permissive', defaultPolicy?: string) =>
    ({ service: 'payments', inbound: { mode, ...(defaultPolicy && { defaultPolicy }) } }) as unknown as Options;

  test('strict: all-authenticated by default, deny when asked', async () => {
    const d = await startMesh({ ...base('strict'), identity: { ca } });
    assert.equal(d.mesh.stats().inbound.authz.defaultPolicy, 'all-authenticated');
    assert.equal(await status(d, who(WEB), '/x'), 200);
    const deny = await startMesh({ ...base('strict', 'deny'), identity: { ca } });
    assert.equal(await status(deny, who(WEB), '/x'), 403);
    assert.equal(deny.calls, 0);
    assert.deepEqual(deny.mesh.stats().inbound.authz.byRule['default:deny'], { allow: 0, deny: 1, audit: 0 });
  });

  test('permissive: all-unauthenticated by default; all-authenticated refuses plaintext', async () => {
    const p = await startMesh({ ...base('permissive'), identity: { ca } });
    assert.equal(p.mesh.stats().inbound.authz.defaultPolicy, 'all-unauthenticated');
    assert.equal(await status(p, null, '/x'), 200);
    assert.equal(await status(p, who(WEB), '/x'), 200);
    const a = await startMesh({ ...base('permissive', 'all-authenticated'), identity: { ca } });
    assert.equal(await status(a, null, '/x'), 403);
    assert.equal(await status(a, who(WEB), '/x'), 200);
  });

  test('cluster-authenticated: the mesh’s own trust domain only, not a federated one', async () => {
    const c = await startMesh({ ...base('strict', 'cluster-authenticated'), identity: { source: await federatedSource(id('payments')) } });
    assert.equal(await status(c, who(WEB), '/x'), 200);
    assert.equal(await status(c, who(FOREIGN), '/x'), 403);
    // The foreign client was authenticated (an all-authenticated mesh with the same source admits it).
    const all = await startMesh({ ...base('strict', 'all-authenticated'), identity: { source: await federatedSource(id('payments')) } });
    assert.equal(await status(all, who(FOREIGN), '/x'), 200);
  });

  test('cluster-unauthenticated admits plaintext from loopback; audit admits and records', async () => {
    const cu = await startMesh({ ...base('permissive', 'cluster-unauthenticated'), identity: { ca } });
    assert.equal(await status(cu, null, '/x'), 200);
    const records: AuditRecord[] = [];
    const au = await startMesh({
      service: 'payments',
      identity: { ca },
      inbound: { mode: 'permissive', defaultPolicy: 'audit', audit: (r: AuditRecord) => records.push(r) },
    });
    assert.equal(await status(au, null, '/x'), 200);
    assert.equal(records.length, 1);
    assert.deepEqual([records[0]!.decision, records[0]!.audit], ['allow', ['default:audit']]);
  });
});

describe('mesh.setPolicy', () => {
  const version = (v: 'A' | 'B') => ({
    rules: [
      { name: `${v}-audit`, action: 'audit' },
      { name: `${v}-allow`, action: 'allow', to: { paths: [`/${v.toLowerCase()}/*`] } },
    ],
  });

  test('swaps atomically under concurrent load: every decision is wholly version A or wholly version B', async () => {
    const records = new Map<string, AuditRecord>();
    const r = await startMesh({
      service: 'payments',
      identity: { ca },
      inbound: { policy: version('A'), audit: (rec: AuditRecord) => void records.set(rec.path, rec) },
    });
    const client = who(WEB);
    const agent = new Agent({ keepAlive: true, maxSockets: 12, cert: client.certChainPem, key: client.keyPem, rejectUnauthorized: false });
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const q = httpsRequest({ host: LOOPBACK, port: r.ports[0], path, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        q.on('error', reject);
        q.end();
      });
    const before = r.mesh.stats().inbound.authz;
    let done = false;
    let flips = 0;
    const flipper = (async () => {
      while (!done) {
        r.mesh.setPolicy(version(flips % 2 === 0 ? 'B' : 'A'));
        flips++;
        await new Promise((res) => setImmediate(res));
      }
    })();
    const N = 400;
    const paths = Array.from({ length: N }, (_, i) => `/${i % 2 === 0 ? 'a' : 'b'}/${i}`);
    let statuses: number[];
    try {
      statuses = await Promise.all(paths.map(get));
    } finally {
      done = true;
      await flipper;
      agent.destroy();
    }
    const seen = { A: 0, B: 0 };
    paths.forEach((path, i) => {
      const rec = records.get(path);
      assert.ok(rec, `an audit record for ${path}`);
      const v = rec.audit[0] === 'A-audit' ? 'A' : 'B';
      assert.deepEqual(rec.audit, [`${v}-audit`], `${path}: exactly one version's audit rule`);
      seen[v]++;
      const mine = path.startsWith(`/${v.toLowerCase()}/`);
      // Version A allows /a/* only, version B /b/* only: the status, the deciding rule and the
      // audit rule all come from the same version.
      assert.equal(statuses[i], mine ? 200 : 403, `${path} under ${v}`);
      assert.equal(rec.rule, mine ? `${v}-allow` : 'no-allow-match', `${path} under ${v}`);
      assert.equal(rec.decision, mine ? 'allow' : 'deny');
    });
    assert.ok(seen.A > 0 && seen.B > 0, `both versions were in force during the run (${JSON.stringify(seen)}, ${flips} flips)`);
    const now = r.mesh.stats().inbound.authz;
    assert.equal(now.allowed + now.denied - before.allowed - before.denied, N, 'every request was decided once');
    assert.equal(now.policyVersion - before.policyVersion, flips);
  });

  test('an invalid policy throws PolicyError naming its paths, and the previous policy stays', async () => {
    const r = await startMesh({ service: 'payments', identity: { ca }, inbound: { policy: version('A'), audit: () => {} } });
    assert.equal(await status(r, who(WEB), '/a/1'), 200);
    const v0 = r.mesh.stats().inbound.authz.policyVersion;
    const bad: Array<[unknown, RegExp]> = [
      [{ rules: [{ name: 'x', action: 'permit' }] }, /rules\[0\]\.action/],
      [{ rules: [{ name: 'x', action: 'allow', to: { paths: ['/a/../b'] } }] }, /rules\[0\]\.to\[0\]\.paths\[0\]/],
      [{ rules: [{ name: 'x', action: 'allow', from: [] }] }, /rules\[0\]\.from/],
      [{ rules: [{ name: 'x', action: 'allow', unknownField: 1 }] }, /rules\[0\].*unknownField|unknownField/],
      ['rules:\n  - action: allow\n    to: { paths: [/b/*] }\n  - action: [\n', /./],
      [`apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: x, namespace: default }\nspec:\n  action: CUSTOM\n`, /./],
    ];
    for (const [policy, path] of bad) {
      assert.throws(
        () => r.mesh.setPolicy(policy),
        (e: unknown) => {
          assert.ok(e instanceof PolicyError, `PolicyError, got ${String(e)}`);
          assert.equal(e.code, 'ERR_SIDECARLESS_POLICY_INVALID');
          const where = e.issues.map((i) => i.path).join(' ') + ' ' + e.message;
          assert.match(where, path, where);
          return true;
        },
        JSON.stringify(policy),
      );
    }
    assert.equal(r.mesh.stats().inbound.authz.policyVersion, v0, 'no version was installed');
    assert.equal(await status(r, who(WEB), '/a/1'), 200, 'the previous policy is still in force');
    assert.equal(await status(r, who(WEB), '/b/1'), 403);
    // A good one after the bad ones is taken.
    r.mesh.setPolicy(version('B'));
    assert.equal(await status(r, who(WEB), '/b/1'), 200);
    assert.equal(await status(r, who(WEB), '/a/1'), 403);
  });

  test('the /a/../b path in a rule is refused with the normalized form in the message', () => {
    const r = running.at(-1)!;
    assert.throws(() => r.mesh.setPolicy({ rules: [{ action: 'allow', to: { paths: ['/a/../b'] } }] }), (e: unknown) => e instanceof PolicyError && /\/b/.test(e.message));
  });
});

describe('inbound.policy as a watched file', () => {
  const v = (path: string, extra = '') => `# policy\nrules:\n  - name: only-${path.slice(1)}\n    action: allow\n    to: { paths: ["${path}"] }${extra}\n`;
  let dir: { dir: string; remove: () => Promise<void> };
  before(async () => {
    dir = await tempDir('sidecarless-policy-');
  });
  after(() => dir?.remove());

  test('edits are picked up; a bad edit is rejected with the previous policy kept and lastPolicyError set', async () => {
    const file = join(dir.dir, 'policy.yaml');
    await writeFile(file, v('/v1'));
    const r = await startMesh({ service: 'payments', identity: { ca }, inbound: { policy: file } });
    const authz = () => r.mesh.stats().inbound.authz;
    assert.equal(authz().policyFile, file);
    assert.equal(authz().lastPolicyError, undefined);
    assert.equal(await status(r, who(WEB), '/v1'), 200);
    assert.equal(await status(r, who(WEB), '/v2'), 403);

    // A good edit (written in place).
    const v0 = authz().policyVersion;
    await writeFile(file, v('/v2', '\n# second version'));
    await waitFor(() => authz().policyVersion > v0, 10_000, 'the edit to be applied');
    assert.equal(await status(r, who(WEB), '/v2'), 200);
    assert.equal(await status(r, who(WEB), '/v1'), 403);

    // A bad edit: the previous policy stays and the error is visible.
    const v1 = authz().policyVersion;
    await writeFile(file, 'rules:\n  - name: broken\n    action: permit\n');
    await waitFor(() => authz().lastPolicyError !== undefined, 10_000, 'the bad edit to be rejected');
    assert.match(authz().lastPolicyError!, /keeping the previous policy/);
    assert.ok(authz().lastPolicyError!.includes(file), authz().lastPolicyError);
    assert.match(authz().lastPolicyError!, /action/);
    assert.equal(authz().policyVersion, v1);
    assert.equal(await status(r, who(WEB), '/v2'), 200);

    // Unparsable YAML too.
    await writeFile(file, 'rules: [\n  {name: x\n');
    await waitFor(() => /not valid YAML/.test(authz().lastPolicyError ?? ''), 10_000, 'the unparsable edit to be rejected');
    assert.equal(authz().policyVersion, v1);
    assert.equal(await status(r, who(WEB), '/v2'), 200);

    // An atomic replace (write elsewhere, rename over), as editors and ConfigMap volumes do.
    const tmp = join(dir.dir, '.policy.yaml.tmp');
    await writeFile(tmp, v('/v3', '\n# third version, replaced atomically'));
    await rename(tmp, file);
    await waitFor(() => authz().policyVersion > v1, 10_000, 'the replaced file to be applied');
    assert.equal(authz().lastPolicyError, undefined, 'a good version clears the error');
    assert.equal(await status(r, who(WEB), '/v3'), 200);
    assert.equal(await status(r, who(WEB), '/v2'), 403);
    assert.equal(await readFile(file, 'utf8'), v('/v3', '\n# third version, replaced atomically'));
  });

  // A writer truncates before it writes: a watcher (or the 2 s poll) can see the file empty, or cut
  // after its leading comments. Loaded as it is, that is a policy without rules, i.e. the default
  // policy (all-authenticated): the gate would open until the rest arrives. Fail closed instead.
  test('an edit that leaves the file empty (or only comments) is rejected, the previous policy kept', async () => {
    const file = join(dir.dir, 'policy-empty.yaml');
    await writeFile(file, v('/only'));
    const r = await startMesh({ service: 'payments', identity: { ca }, inbound: { policy: file } });
    const authz = () => r.mesh.stats().inbound.authz;
    assert.equal(await status(r, who(WEB), '/other'), 403);
    const v0 = authz().policyVersion;
    for (const text of ['', '\n  \n', '# policy\n', '# policy\n---\n']) {
      await writeFile(file, v('/only', `\n# before ${JSON.stringify(text)}`));
      await waitFor(() => authz().lastPolicyError === undefined && authz().policyVersion > v0, 10_000, 'a good version first');
      const before = authz().policyVersion;
      await writeFile(file, text);
      await waitFor(() => authz().lastPolicyError !== undefined || authz().policyVersion > before, 10_000, `the edit ${JSON.stringify(text)} to be judged`);
      assert.equal(authz().policyVersion, before, `${JSON.stringify(text)} must not be installed`);
      assert.match(authz().lastPolicyError ?? '', /empty/);
      assert.equal(await status(r, who(WEB), '/other'), 403, `still closed after ${JSON.stringify(text)}`);
    }
    // The very text in force comes back (the writer finished): the error clears, nothing is swapped.
    const inForce = v('/only', `\n# before ${JSON.stringify('# policy\n---\n')}`);
    const before = authz().policyVersion;
    await writeFile(file, inForce);
    await waitFor(() => authz().lastPolicyError === undefined, 10_000, 'the error to clear');
    assert.equal(authz().policyVersion, before);
    assert.equal(await status(r, who(WEB), '/only'), 200);
  });

  test('setPolicy on a file-backed mesh takes effect until the file changes again', async () => {
    const file = join(dir.dir, 'policy2.yaml');
    await writeFile(file, v('/f1'));
    const r = await startMesh({ service: 'payments', identity: { ca }, inbound: { policy: file } });
    r.mesh.setPolicy(v('/s1'));
    assert.equal(await status(r, who(WEB), '/s1'), 200);
    const v0 = r.mesh.stats().inbound.authz.policyVersion;
    await writeFile(file, v('/f2', '\n# changed'));
    await waitFor(() => r.mesh.stats().inbound.authz.policyVersion > v0, 10_000, 'the file edit');
    assert.equal(await status(r, who(WEB), '/f2'), 200);
    assert.equal(await status(r, who(WEB), '/s1'), 403);
  });

  test('a missing file at start → createMesh rejects, naming the file', async () => {
    const file = join(dir.dir, 'nope.yaml');
    await assert.rejects(createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: file } }), (e: Error) => {
      assert.ok(e.message.includes(file), e.message);
      assert.match(e.message, /does not exist/);
      return true;
    });
  });

  test('an invalid file at start → createMesh rejects with a PolicyError naming the field', async () => {
    const file = join(dir.dir, 'bad.yaml');
    await writeFile(file, 'rules:\n  - name: broken\n    action: permit\n');
    await assert.rejects(createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: file } }), (e: Error) => {
      assert.ok(e instanceof PolicyError, String(e));
      assert.equal(e.code, 'ERR_SIDECARLESS_POLICY_INVALID');
      assert.ok(e.message.includes(file), `names the file: ${e.message}`);
      assert.match(e.message, /rules\[0\]\.action/);
      assert.ok(e.issues.some((i) => i.path === 'rules[0].action'), JSON.stringify(e.issues));
      return true;
    });
  });
});

describe('audit records and decision counters', () => {
  test('audit rules produce records through inbound.audit; stats count decisions by rule', async () => {
    const records: AuditRecord[] = [];
    const r = await startMesh({
      service: 'payments',
      identity: { ca },
      inbound: {
        audit: (rec: AuditRecord) => records.push(rec),
        policy: {
          rules: [
            { name: 'watch-admin', action: 'audit', to: { paths: ['/admin', '/admin/*'] } },
            { name: 'watch-writes', action: 'audit', to: { methods: ['POST'] } },
            { name: 'no-debug', action: 'deny', when: { headers: { 'x-debug': ['*'] } } },
            { name: 'admin', action: 'allow', from: { identities: [id('admin')] }, to: { paths: ['/admin', '/admin/*'] } },
            { name: 'public', action: 'allow', to: { paths: ['/public/*'] } },
          ],
        },
      },
    });
    const admin = await ca.issue({ spiffeId: id('admin') });
    assert.equal(await status(r, who(WEB), '/public/x'), 200);
    assert.equal(records.length, 0, 'no audit rule matched, no record');
    assert.equal(await status(r, who(WEB), '/public/../admin/x'), 403);
    assert.equal(await status(r, admin, '//admin'), 200);
    assert.equal(await status(r, who(WEB), '/public/x', { method: 'POST' }), 200);
    assert.equal(await status(r, who(WEB), '/admin', { method: 'POST', headers: 'X-Debug: 1\r\n' }), 403);
    assert.equal(await status(r, who(WEB), '/public/x', { headers: 'X-Debug: 1\r\n' }), 403);
    assert.equal(await status(r, who(WEB), '/public/%2fx'), 400);

    assert.equal(records.length, 4, JSON.stringify(records, null, 1));
    const [denied, allowed, write, both] = records;
    assert.deepEqual(
      { ...denied, time: undefined },
      { time: undefined, type: 'sidecarless.audit', decision: 'deny', rule: 'no-allow-match', audit: ['watch-admin'], peer: WEB, sourceIp: denied!.sourceIp, method: 'GET', path: '/admin/x', host: 'svc' },
    );
    assert.match(denied!.sourceIp, /127\.0\.0\.1$/);
    assert.ok(!Number.isNaN(Date.parse(denied!.time)));
    assert.deepEqual([allowed!.decision, allowed!.rule, allowed!.audit, allowed!.peer, allowed!.path], ['allow', 'admin', ['watch-admin'], id('admin'), '/admin']);
    assert.deepEqual([write!.decision, write!.rule, write!.audit, write!.method], ['allow', 'public', ['watch-writes'], 'POST']);
    assert.deepEqual([both!.decision, both!.rule, [...both!.audit].sort()], ['deny', 'no-debug', ['watch-admin', 'watch-writes']]);

    const a = r.mesh.stats().inbound.authz;
    assert.deepEqual([a.allowed, a.denied, a.malformed], [3, 3, 1]);
    assert.deepEqual(a.byRule, {
      public: { allow: 2, deny: 0, audit: 0 },
      'no-allow-match': { allow: 0, deny: 1, audit: 0 },
      admin: { allow: 1, deny: 0, audit: 0 },
      'no-debug': { allow: 0, deny: 2, audit: 0 },
      'watch-admin': { allow: 0, deny: 0, audit: 3 },
      'watch-writes': { allow: 0, deny: 0, audit: 2 },
    });
    // The snapshot is a copy: mutating it changes nothing.
    a.byRule.public!.allow = 1000;
    assert.equal(r.mesh.stats().inbound.authz.byRule.public!.allow, 2);
    assert.equal(r.calls, 3);
  });
});

test('an empty policy file at start is refused like an empty reload: it would open the gate', async (t) => {
  const tmp = await tempDir();
  t.after(tmp.remove);
  const file = join(tmp.dir, 'policy.yaml');
  await writeFile(file, '# nothing yet\n---\n');
  const ca2 = await createDevCa();
  await assert.rejects(
    createMesh({ service: 'payments', identity: { ca: ca2 }, logger: { info() {}, warn() {}, error() {} }, inbound: { policy: file } }),
    (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_POLICY_INVALID' && /is empty.*rules: \[\]/.test(e.message),
  );
});
