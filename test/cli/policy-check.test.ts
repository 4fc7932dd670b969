// `sidecarless policy check`: the decisions, in process through the CLI's own main() on real files.
// Exit codes, streams and error lines as a user sees them are in test/e2e/cli-errors.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/run.js';

const FILES: Record<string, string> = {
  'p.yaml': `rules:
  - name: allow-web
    action: allow
    from: { identities: ["spiffe://cluster.local/ns/default/sa/web"] }
    to: { methods: [GET], paths: ["/public/*"] }
  - name: deny-debug
    action: deny
    when: { headers: { x-debug: ["*"] } }
  - name: watch
    action: audit
    to: { paths: ["/public/*"] }
`,
  'bad.yaml': 'rules:\n  - action: allow\n    frm: {}\n',
  'dns.yaml': `rules:
  - name: linkerd-ops
    action: allow
    from: { identities: ["*.ops.serviceaccount.identity.linkerd.cluster.local"] }
  - name: by-namespace
    action: allow
    from: { namespaces: [shop] }
`,
  'istio.yaml': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{to: [{operation: {paths: ["/ok"]}}]}]
`,
};

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sidecarless-policy-check-'));
  for (const [name, text] of Object.entries(FILES)) await writeFile(join(dir, name), text);
});
after(() => rm(dir, { recursive: true, force: true }));

/** Runs `sidecarless policy check <args>`; `--policy NAME` names a file of FILES. */
async function run(args: string[]) {
  let out = '';
  let err = '';
  const inDir = args.map((a, i) => (args[i - 1] === '--policy' ? join(dir, a) : a.startsWith('--policy=') ? `--policy=${join(dir, a.slice(9))}` : a));
  const nl = (s: string) => (s.endsWith('\n') ? s : s + '\n');
  const code = await main(['policy', 'check', ...inDir], { stdout: (s) => (out += nl(s)), stderr: (s) => (err += nl(s)) });
  return { code, out, err };
}

const WEB = 'spiffe://cluster.local/ns/default/sa/web';

test('ALLOW prints the deciding rule and audit rules, exit 0', async () => {
  const r = await run(['--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/public/x?q=1']);
  assert.equal(r.code, 0);
  assert.equal(r.out, 'ALLOW allow-web\naudit: watch\n');
  assert.equal(r.err, '');
});

test('DENY prints the deciding rule, exit 1', async () => {
  const plain = await run(['--policy', 'p.yaml', '--from', 'unauthenticated', '--method', 'GET', '--path', '/public/x']);
  assert.deepEqual([plain.code, plain.out], [1, 'DENY no-allow-match\naudit: watch\n']);
  const dbg = await run(['--policy=p.yaml', '--from', WEB, '--method', 'GET', '--path', '/public/x', '--header', 'X-Debug=1']);
  assert.deepEqual([dbg.code, dbg.out.split('\n')[0]], [1, 'DENY deny-debug']);
  const traversal = await run(['--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/public/../admin']);
  assert.deepEqual([traversal.code, traversal.out], [1, 'DENY no-allow-match\n']);
  const lower = await run(['--policy', 'p.yaml', '--from', WEB, '--method', 'get', '--path', '/public/x']);
  assert.equal(lower.code, 1);
});

test('a malformed target is a DENY with the reason, exit 1', async () => {
  const r = await run(['--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/public/%2e%2e%2fadmin']);
  assert.equal(r.code, 1);
  assert.match(r.out, /^DENY \(malformed target: encoded slash/);
});

test('default policy, trust domain, namespace and labels options', async () => {
  const none = await run(['--policy', 'istio.yaml', '--from', 'unauthenticated', '--method', 'GET', '--path', '/x', '--default-policy', 'all-unauthenticated']);
  assert.deepEqual([none.code, none.out], [0, 'ALLOW default:all-unauthenticated\n']);
  const selected = await run(['--policy', 'istio.yaml', '--from', WEB, '--method', 'GET', '--path', '/x', '--label', 'app=web']);
  assert.deepEqual([selected.code, selected.out], [1, 'DENY no-allow-match\n']);
  const ok = await run(['--policy', 'istio.yaml', '--from', WEB, '--method', 'GET', '--path', '/ok', '--label', 'app=web']);
  assert.deepEqual([ok.code, ok.out], [0, 'ALLOW default/web#0\n']);
  const otherNs = await run(['--policy', 'istio.yaml', '--from', WEB, '--method', 'GET', '--path', '/x', '--label', 'app=web', '--namespace', 'prod']);
  assert.equal(otherNs.code, 0);
  const ca = await run(['--policy', 'istio.yaml', '--from', WEB, '--method', 'GET', '--path', '/x', '--default-policy', 'cluster-authenticated', '--trust-domain', 'other.td']);
  assert.equal(ca.code, 1);
});

test('usage and policy errors exit 2 with an error line in the one style', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--from', WEB, '--method', 'GET', '--path', '/'], /--policy is required/],
    [['--policy', 'p.yaml', '--from', 'web', '--method', 'GET', '--path', '/'], /--from must be a SPIFFE ID/],
    [['--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/', '--port', 'x'], /--port/],
    [['--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/', '--bogus', '1'], /unknown option --bogus/],
    [['--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/', '--methd', 'GET'], /unknown option --methd \(did you mean --method\?\)/],
    [['--policy', 'p.yaml', '--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/'], /--policy is given twice/],
    [['--policy', 'p.yaml', '--from', WEB, '--method', '--path', '/'], /--method needs a value/],
    [['--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/', '--default-policy', 'maybe'], /--default-policy/],
    [['--policy', 'p.yaml', '--from', WEB, '--method', 'GET', '--path', '/', '--header', 'novalue'], /k=v/],
  ];
  for (const [args, msg] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.out, '');
    const [first, second] = r.err.split('\n');
    assert.match(first!, /^sidecarless: .* \[ERR_SIDECARLESS_USAGE\]$/, r.err);
    assert.match(first!, msg);
    assert.match(second!, /^usage: sidecarless policy check --policy FILE/);
  }
  const usage = await run([]);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /^sidecarless: --policy, --from, --method and --path are required \[ERR_SIDECARLESS_USAGE\]\nusage: sidecarless policy check/);
});

test('a policy file that cannot be read or loaded exits 2 (never 1, which is DENY), one line per problem', async () => {
  const missing = await run(['--policy', 'missing.yaml', '--from', WEB, '--method', 'GET', '--path', '/']);
  assert.equal(missing.code, 2);
  assert.equal(missing.out, '');
  assert.match(missing.err, /^sidecarless: \S*missing\.yaml does not exist \[ERR_SIDECARLESS_FILE\]\n$/);
  const bad = await run(['--policy', 'bad.yaml', '--from', WEB, '--method', 'GET', '--path', '/']);
  assert.equal(bad.code, 2);
  assert.equal(bad.out, '');
  const lines = bad.err.trimEnd().split('\n');
  assert.ok(lines.length >= 1);
  for (const l of lines) assert.match(l, /^sidecarless: \S*bad\.yaml:\d+:\d+ .* \[ERR_SIDECARLESS_POLICY_INVALID\]$/, "file:line:col, then the path and what is wrong");
  assert.match(bad.err, /rules\[0\]\.frm: unknown field/);
});

test('--from takes a DNS-like (Linkerd) identity: patterns label-wise, namespace parsed', async () => {
  const L = 'serviceaccount.identity.linkerd.cluster.local';
  const ops = await run(['--policy', 'dns.yaml', '--from', `admin.ops.${L}`, '--method', 'GET', '--path', '/']);
  assert.deepEqual([ops.code, ops.out], [0, 'ALLOW linkerd-ops\n']);
  const shop = await run(['--policy', 'dns.yaml', '--from', `web.shop.${L}`, '--method', 'GET', '--path', '/']);
  assert.deepEqual([shop.code, shop.out], [0, 'ALLOW by-namespace\n']);
  const trick = await run(['--policy', 'dns.yaml', '--from', `admin.xops.${L}`, '--method', 'GET', '--path', '/']);
  assert.equal(trick.code, 1);
  assert.match(trick.out, /^DENY /);
  const bad = await run(['--policy', 'dns.yaml', '--from', 'Admin.ops.x', '--method', 'GET', '--path', '/']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /a DNS-like identity/);
});
