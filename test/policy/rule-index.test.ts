// The peer index: what it prunes, and that pruning never changes a decision or the deciding rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/index.js';
import { tablesOf } from '../../src/policy/compile.js';
import { candidates } from '../../src/policy/rule-index.js';
import { OPTS, req } from './helpers.js';

const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

function peerOf(spiffeId: string) {
  return req({ from: spiffeId }).peer!;
}

test('wildcard identities, namespaces, service accounts and trust domains are indexed: a peer only gets the rules its identity admits', () => {
  const c = compilePolicy(
    {
      rules: [
        { name: 'prefix', action: 'allow', from: { identities: ['spiffe://cluster.local/ns/team-7/*'] } },
        { name: 'suffix', action: 'allow', from: { identities: ['*/sa/payments'] } },
        { name: 'ns', action: 'allow', from: { namespaces: ['team-8'] } },
        { name: 'sa', action: 'allow', from: { serviceAccounts: ['team-9/*'] } },
        { name: 'td', action: 'allow', from: { trustDomains: ['partner.example'] } },
        { name: 'off-boundary', action: 'allow', from: { identities: ['spiffe://cluster.local/ns/team-7/sa/pay*'] } },
        { name: 'when', action: 'allow', to: { paths: ['/x'] }, when: { namespaces: ['team-9'] } },
        { name: 'unauth', action: 'allow', from: { unauthenticated: true } },
        { name: 'not-only', action: 'allow', from: { notNamespaces: ['team-7'] } },
      ],
    },
    OPTS,
  );
  const names = (spiffeId: string | null) => candidates(tablesOf(c)!.top.allows, spiffeId === null ? null : peerOf(spiffeId)).map((r) => r.name);
  assert.deepEqual(names(id('team-7', 'payments')), ['prefix', 'suffix', 'off-boundary']);
  assert.deepEqual(names(id('team-7', 'web')), ['prefix']);
  assert.deepEqual(names(id('team-8', 'web')), ['ns', 'not-only']);
  assert.deepEqual(names(id('team-9', 'web')), ['sa', 'when', 'not-only']);
  assert.deepEqual(names('spiffe://partner.example/ns/team-7/sa/web'), ['td']);
  assert.deepEqual(names(id('other', 'payments')), ['suffix', 'not-only']);
  assert.deepEqual(names(null), ['unauth', 'not-only']);
});

test('the lowest-positioned matching rule decides, whichever index buckets the matches come from', () => {
  const c = compilePolicy(
    {
      rules: [
        { name: 'by-td', action: 'deny', from: { trustDomains: ['cluster.local'] }, to: { paths: ['/a'] } },
        { name: 'by-suffix', action: 'deny', from: { identities: ['*/sa/b'] } },
        { name: 'by-prefix', action: 'deny', from: { identities: ['spiffe://cluster.local/ns/a/*'] } },
        { name: 'scanned', action: 'deny', from: { identities: ['*'] } },
      ],
    },
    OPTS,
  );
  assert.equal(c.evaluate(req({ from: id('a', 'b'), path: '/a' })).rule, 'by-td');
  assert.equal(c.evaluate(req({ from: id('a', 'b'), path: '/b' })).rule, 'by-suffix');
  assert.equal(c.evaluate(req({ from: id('a', 'c'), path: '/b' })).rule, 'by-prefix');
  assert.equal(c.evaluate(req({ from: id('z', 'c'), path: '/b' })).rule, 'scanned');
});

test('matched audit rules from several buckets are reported once each, in policy order', () => {
  const c = compilePolicy(
    {
      rules: [
        { name: 'scanned', action: 'audit', from: { notNamespaces: ['z'] } },
        { name: 'by-suffix', action: 'audit', from: [{ identities: ['*/sa/b'] }, { identities: ['spiffe://cluster.local/ns/a/*'] }] },
        { name: 'by-td', action: 'audit', from: { trustDomains: ['cluster.local'] } },
        { name: 'by-prefix', action: 'audit', from: { identities: ['spiffe://cluster.local/ns/a/*'] } },
        { name: 'other', action: 'audit', from: { identities: ['spiffe://cluster.local/ns/b/*'] } },
      ],
    },
    OPTS,
  );
  assert.deepEqual(c.evaluate(req({ from: id('a', 'b') })).audit, ['scanned', 'by-suffix', 'by-td', 'by-prefix']);
});

test('one peer object reused with different identity fields is re-indexed, not served a stale candidate list', () => {
  const c = compilePolicy(
    {
      rules: [
        { name: 'a', action: 'allow', from: { identities: ['spiffe://cluster.local/ns/a/*'] } },
        { name: 'b', action: 'allow', from: { identities: ['spiffe://cluster.local/ns/b/*'] } },
      ],
    },
    OPTS,
  );
  const peer = { id: id('a', 'x'), kind: 'spiffe' as const, spiffeId: id('a', 'x'), trustDomain: 'cluster.local', namespace: 'a', serviceAccount: 'x' };
  const r = { ...req(), peer };
  assert.equal(c.evaluate(r).rule, 'a');
  assert.equal(c.evaluate(r).rule, 'a');
  Object.assign(peer, { id: id('b', 'x'), spiffeId: id('b', 'x'), namespace: 'b' });
  assert.equal(c.evaluate(r).rule, 'b');
  Object.assign(peer, { id: id('c', 'x'), spiffeId: id('c', 'x'), namespace: 'c' });
  assert.equal(c.evaluate(r).rule, 'no-allow-match');
});

test('server rules are indexed too', () => {
  const c = compilePolicy(
    {
      servers: [
        {
          name: 'api',
          ports: [8443],
          rules: [
            { name: 'team', action: 'allow', from: { serviceAccounts: ['team-1/*'] } },
            { name: 'pay', action: 'allow', from: { identities: ['*/sa/payments'] } },
          ],
        },
      ],
    },
    OPTS,
  );
  assert.equal(c.evaluate(req({ from: id('team-1', 'web') })).rule, 'team');
  assert.equal(c.evaluate(req({ from: id('team-2', 'payments') })).rule, 'pay');
  assert.equal(c.evaluate(req({ from: id('team-2', 'web') })).rule, 'default:deny');
  assert.equal(c.evaluate(req({ from: id('team-2', 'web') })).server, 'api');
});
