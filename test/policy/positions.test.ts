// Policy text errors name the line and column (and the file, when one is given): YAML syntax
// errors, schema errors mapped back from their path to the node that was written, importer errors,
// multi-document streams and Lists. One message per mistake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyError } from '../../src/errors.js';
import { loadPolicy } from '../../src/policy/index.js';

interface Located {
  path: string;
  message: string;
  line?: number;
  column?: number;
  file?: string;
}

function failure(text: string | object, file?: string): { message: string; issues: Located[] } {
  try {
    loadPolicy(text as string, file === undefined ? {} : { file });
  } catch (e) {
    assert.ok(e instanceof PolicyError, `expected a PolicyError, got ${e}`);
    assert.equal(e.code, 'ERR_SIDECARLESS_POLICY_INVALID');
    return { message: e.message, issues: [...e.issues] };
  }
  assert.fail('expected a PolicyError');
}

/** `[line, column, path]` of every issue. */
const where = (f: { issues: Located[] }) => f.issues.map((i) => [i.line, i.column, i.path]);

test('YAML syntax errors: line and column, one message per broken document', () => {
  const cases: Array<[string, number, number, RegExp]> = [
    ['rules:\n  - name: a\n   action: allow\n', 3, 1, /Sequence item without - indicator/],
    ['rules:\n\t- name: a\n', 2, 1, /Tabs are not allowed/],
    ['a: 1\na: 2\n', 2, 1, /Map keys must be unique/],
    ['rules:\n  - name: a: b\n', 2, 11, /Nested mappings/],
    ['- a\nb: 1\n', 2, 1, /Unexpected scalar/], // three errors from yaml, one mistake
    ['x: &a 1\ny: *b\n', 2, 4, /Unresolved alias/], // toJS throws this one: still a PolicyError
  ];
  for (const [text, line, column, message] of cases) {
    const f = failure(text);
    assert.equal(f.issues.length, 1, `${JSON.stringify(text)}: ${f.message}`);
    assert.deepEqual([f.issues[0]!.line, f.issues[0]!.column], [line, column], JSON.stringify(text));
    assert.match(f.issues[0]!.message, /^not valid YAML\/JSON: /);
    assert.match(f.issues[0]!.message, message);
    assert.equal(f.message, `invalid policy:\n  ${line}:${column} ${f.issues[0]!.message}`, 'the root is not named when a position is');
  }
  const many = failure('rules: []\n---\nrules: [\n---\nc: d: e\n');
  assert.deepEqual(where(many), [[4, 1, '[1]'], [5, 4, '[2]']], 'each broken document once; the good one says nothing');
});

test('schema errors point at the value written (or the key, for an unknown field)', () => {
  const text = [
    'rules:', //                                   1
    '  - name: a', //                               2
    '    action: alow', //                          3
    '    form: []', //                              4
    '  - action: deny', //                          5
    '    to:', //                                   6
    '      - paths: /admin', //                     7
    '        methods: [GET, 5]', //                 8
    '    from: [{ identities: [] }]', //            9
  ].join('\n');
  const f = failure(text);
  assert.deepEqual(where(f).sort(), [
    [3, 13, 'rules[0].action'],
    [4, 5, 'rules[0].form'],
    [7, 16, 'rules[1].to[0].paths'],
    [8, 24, 'rules[1].to[0].methods[1]'],
    [9, 26, 'rules[1].from[0].identities'],
  ].sort());
  assert.match(f.message, /^ {2}3:13 rules\[0\]\.action: must be one of "allow", "deny", "audit", got the string "alow" \(did you mean "allow"\?\)$/m);
  assert.match(f.message, /^ {2}4:5 rules\[0\]\.form: unknown field \(did you mean "from"\?\)$/m);
  assert.match(f.message, /^ {2}7:16 rules\[1\]\.to\[0\]\.paths: must be a list, got the string "\/admin" \(write a list: \["\/admin"\]\)$/m);
  assert.match(f.message, /^ {2}9:26 rules\[1\]\.from\[0\]\.identities: must not be empty \(omit the field to match anything\)$/m, "the schema's own words are kept");
  assert.equal(f.message.split('\n').length, 1 + f.issues.length, 'one line per issue');
});

test('a missing field points at the object it belongs in', () => {
  const f = failure('apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nspec: {}\n');
  assert.deepEqual(where(f), [[1, 1, 'metadata']]);
  const g = failure('rules:\n  - name: a\n    to: [{ paths: ["/a"] }]\n');
  assert.deepEqual(where(g), [[2, 5, 'rules[0].action']], 'the rule that lacks its action');
  assert.match(g.message, /rules\[0\]\.action: is required/);
});

test('the file name, when given: file:line:col', () => {
  const f = failure('rules:\n  - action: alow\n', 'policies/payments.yaml');
  assert.equal(f.issues[0]!.file, 'policies/payments.yaml');
  assert.match(f.message, /^invalid policy in policies\/payments\.yaml:\n {2}policies\/payments\.yaml:2:13 rules\[0\]\.action: must be one of/);
  const s = failure('rules: [\n', 'p.yaml');
  assert.match(s.message, /^invalid policy in p\.yaml:\n {2}p\.yaml:2:1 not valid YAML\/JSON: /);
});

test('Istio and Linkerd importers, multi-document streams, Lists, JSON and dotted keys', () => {
  const istio = [
    'apiVersion: security.istio.io/v1',
    'kind: AuthorizationPolicy',
    'metadata: { name: x, namespace: shop }',
    'spec:',
    '  action: DENI',
    '  selector:',
    '    matchLabels:',
    '      app.kubernetes.io/name: 5',
    '  rules:',
    '    - to:',
    '        - operation: { pathz: ["/x"] }',
  ].join('\n');
  const f = failure(istio);
  assert.deepEqual(where(f).sort(), [
    [5, 11, 'spec.action'],
    [8, 31, 'spec.selector.matchLabels.app.kubernetes.io/name'],
    [11, 24, 'spec.rules[0].to[0].operation.pathz'],
  ].sort());
  assert.match(f.message, /5:11 spec\.action: must be one of "ALLOW", "DENY", "AUDIT", "CUSTOM", got the string "DENI" \(did you mean "DENY"\?\)/);

  const stream = `rules: []\n---\n${istio}\n`;
  assert.deepEqual(where(failure(stream)).map(([l, c, p]) => [Number(l) - 2, c, p]).sort(), where(f).map(([l, c, p]) => [l, c, `[1].${p}`]).sort(), 'the same positions, two lines down, in document [1]');

  const list = 'apiVersion: v1\nkind: List\nitems:\n  - apiVersion: security.istio.io/v1\n    kind: AuthorizationPolicy\n    metadata: { name: a }\n    spec: { action: DENI }\n';
  assert.deepEqual(where(failure(list)), [[7, 21, 'items[0].spec.action']]);

  const linkerd = [
    'apiVersion: policy.linkerd.io/v1beta3',
    'kind: Server',
    'metadata: { name: web, namespace: shop }',
    'spec:',
    '  podSelector: { matchLabels: { app: web } }',
    '  port: http',
    '  bogus: 1',
  ].join('\n');
  assert.deepEqual(where(failure(linkerd)), [[7, 3, 'spec.bogus']]);
  assert.deepEqual(where(failure(linkerd.replace('  bogus: 1', ''))), [[6, 9, 'spec.port']], "the importer's own checks too");

  const json = '{"rules": [{"action": "allow", "to": [{"paths": "/x"}]}]}';
  assert.deepEqual(where(failure(json)), [[1, 49, 'rules[0].to[0].paths']]);
});

test('objects have no text: paths only, and nothing else changes', () => {
  const f = failure({ rules: [{ action: 'alow' }] });
  assert.deepEqual(f.issues, [{ path: 'rules[0].action', message: 'must be one of "allow", "deny", "audit", got the string "alow" (did you mean "allow"?)' }]);
  assert.equal(f.message, 'invalid policy:\n  rules[0].action: must be one of "allow", "deny", "audit", got the string "alow" (did you mean "allow"?)');
});

test('thousands of mistakes: every one in err.issues, the message stays readable', () => {
  const rule = Object.fromEntries([['action', 'allow'], ...Array.from({ length: 2000 }, (_, i) => [`k${i}`, 1])]);
  const f = failure({ rules: [rule] });
  assert.equal(f.issues.length, 2000);
  const lines = f.message.split('\n');
  assert.equal(lines.length, 1 + 50 + 1);
  assert.equal(lines.at(-1), '  … and 1950 more (err.issues lists them all)');
  const huge = failure({ rules: [{ action: 'allow', ['x'.repeat(1_000_000)]: 1 }] });
  assert.match(huge.issues[0]!.message, /^unknown field; known: /, 'a 1 MB key is judged without a quadratic search');
});
