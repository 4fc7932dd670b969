import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldPathCase, trailingSlashTwin } from '../../src/policy/equivalence.js';
import { compilePolicy, loadPolicy } from '../../src/policy/index.js';

test('trailingSlashTwin toggles one trailing slash, never for / or *', () => {
  assert.equal(trailingSlashTwin('/admin'), '/admin/');
  assert.equal(trailingSlashTwin('/admin/'), '/admin');
  assert.equal(trailingSlashTwin('/a/b/'), '/a/b');
  assert.equal(trailingSlashTwin('/'), undefined);
  assert.equal(trailingSlashTwin('*'), undefined);
  assert.equal(trailingSlashTwin(''), undefined);
});

test('foldPathCase lower-cases every path pattern: rules, when, server routes and server rules; nothing else', () => {
  const policy = loadPolicy({
    rules: [
      { name: 'r', action: 'deny', from: { identities: ['spiffe://cluster.local/ns/A/sa/B'] }, to: { paths: ['/Admin/*'], notPaths: ['/Admin/Health'], hosts: ['API.example'] }, when: [{ paths: ['/X/{Id}'] }] },
    ],
    servers: [
      { name: 's', ports: [8080], routes: [{ paths: ['/Api/*'] }], rules: [{ name: 'sr', action: 'allow', to: { paths: ['/Api/V1'] } }] },
    ],
  });
  const folded = foldPathCase(policy);
  const rule = folded.rules[0]!;
  assert.deepEqual(rule.to[0]!.paths, ['/admin/*']);
  assert.deepEqual(rule.to[0]!.notPaths, ['/admin/health']);
  assert.deepEqual(rule.when[0]!.paths, ['/x/{id}']);
  assert.deepEqual(rule.from[0]!.identities, ['spiffe://cluster.local/ns/A/sa/B'], 'identities keep their case');
  assert.deepEqual(folded.servers[0]!.routes[0]!.paths, ['/api/*']);
  assert.deepEqual(folded.servers[0]!.rules[0]!.to[0]!.paths, ['/api/v1']);
  assert.deepEqual(policy.rules[0]!.to[0]!.paths, ['/Admin/*'], 'the original is not changed');
  // The folded policy still compiles (templates included).
  compilePolicy(folded, { trustDomain: 'cluster.local', namespace: 'default' });
});
