import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyError } from '../../src/errors.js';
import { loadPolicy, parsePolicy } from '../../src/policy/index.js';

function issues(fn: () => unknown): Array<{ path: string; message: string; line?: number; column?: number }> {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PolicyError, String(e));
    assert.equal(e.code, 'ERR_SIDECARLESS_POLICY_INVALID');
    for (const i of e.issues) {
      // `line:col path: message`; the document root is not named when a position is.
      const line = i.line === undefined ? `${i.path}: ${i.message}` : i.path === '(root)' ? `${i.line}:${i.column} ${i.message}` : `${i.line}:${i.column} ${i.path}: ${i.message}`;
      assert.ok(e.message.includes(line), `message lists each issue: ${line}`);
    }
    return [...e.issues];
  }
  assert.fail('expected a PolicyError');
}

test('rule names are generated as rule-<index> when absent', () => {
  const p = parsePolicy({ rules: [{ action: 'allow' }, { name: 'named', action: 'deny' }, { action: 'audit' }] });
  assert.deepEqual(p.rules.map((r) => r.name), ['rule-0', 'named', 'rule-2']);
});

test('object shorthand and lists are both accepted for from/to/when', () => {
  const p = parsePolicy({ rules: [{ action: 'allow', from: { identities: ['*'] }, to: [{ methods: ['GET'] }, { methods: ['POST'] }] }] });
  assert.equal(p.rules[0]!.from.length, 1);
  assert.equal(p.rules[0]!.to.length, 2);
});

test('unknown fields are errors naming their path', () => {
  const got = issues(() =>
    parsePolicy({ rules: [{ action: 'allow', frm: {} }, { action: 'deny', from: [{ identity: ['*'] }], to: { method: ['GET'] } }], extra: 1 }),
  );
  const paths = got.map((i) => i.path).sort();
  assert.deepEqual(paths, ['extra', 'rules[0].frm', 'rules[1].from[0].identity', 'rules[1].to[0].method']);
  assert.ok(got.every((i) => i.message.startsWith('unknown field')));
  assert.equal(got.find((i) => i.path === 'rules[0].frm')!.message, 'unknown field (did you mean "from"?)');
});

test('invalid values name their paths', () => {
  const got = issues(() =>
    parsePolicy({
      rules: [
        {
          action: 'permit',
          from: {
            identities: ['cluster.local/ns/a/sa/b', 'spiffe://td/*/x'],
            ipBlocks: ['10.0.0.0/33', '::1/129', '300.1.1.1', 'fe80::1%eth0'],
            serviceAccounts: ['nope'],
            trustDomains: ['Upper.Case'],
          },
          to: {
            paths: ['admin', '/a/../b', '/a//b*', '/x/{id', '/{**}/x', '*a*'],
            methods: ['G*', 'GE T'],
            ports: [0, 70000, 1.5],
            hosts: ['example.com:8080'],
          },
        },
      ],
    }),
  );
  const byPath = new Map(got.map((i) => [i.path, i.message]));
  for (const p of [
    'rules[0].action',
    'rules[0].from[0].identities[0]',
    'rules[0].from[0].identities[1]',
    'rules[0].from[0].ipBlocks[0]',
    'rules[0].from[0].ipBlocks[1]',
    'rules[0].from[0].ipBlocks[2]',
    'rules[0].from[0].ipBlocks[3]',
    'rules[0].from[0].serviceAccounts[0]',
    'rules[0].from[0].trustDomains[0]',
    'rules[0].to[0].paths[0]',
    'rules[0].to[0].paths[1]',
    'rules[0].to[0].paths[2]',
    'rules[0].to[0].paths[3]',
    'rules[0].to[0].paths[4]',
    'rules[0].to[0].paths[5]',
    'rules[0].to[0].methods[0]',
    'rules[0].to[0].methods[1]',
    'rules[0].to[0].ports[0]',
    'rules[0].to[0].ports[1]',
    'rules[0].to[0].ports[2]',
    'rules[0].to[0].hosts[0]',
  ]) {
    assert.ok(byPath.has(p), `missing issue at ${p}; got ${[...byPath.keys()].join(', ')}`);
  }
  assert.match(byPath.get('rules[0].to[0].paths[1]')!, /normalized form.*"\/b"/);
});

test('empty lists are refused (omit the field to match anything)', () => {
  const got = issues(() => parsePolicy({ rules: [{ action: 'allow', from: { identities: [] } }] }));
  assert.equal(got[0]!.path, 'rules[0].from[0].identities');
  assert.match(got[0]!.message, /omit/);
});

test('loadPolicy reads native YAML and JSON, and reports YAML errors', () => {
  const y = loadPolicy('rules:\n  - action: allow\n    from: { identities: ["*"] }\n');
  assert.equal(y.rules[0]!.name, 'rule-0');
  const j = loadPolicy('{"apiVersion":"sidecarless.dev/v1","kind":"Policy","rules":[{"name":"x","action":"deny"}]}');
  assert.equal(j.rules[0]!.name, 'x');
  const got = issues(() => loadPolicy('rules: [\n'));
  assert.match(got[0]!.message, /YAML/);
  const bad = issues(() => loadPolicy({ rules: [{ action: 'allow', bogus: true }] }));
  assert.equal(bad[0]!.path, 'rules[0].bogus');
});

test('multi-document native errors name the document', () => {
  const got = issues(() => loadPolicy('rules: [{action: allow}]\n---\nrules: [{action: allow, nope: 1}]\n'));
  assert.equal(got[0]!.path, '[1].rules[0].nope');
});

test('unsupported kinds are refused with their path', () => {
  const got = issues(() => loadPolicy({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }));
  assert.equal(got[0]!.path, 'apiVersion');
});
