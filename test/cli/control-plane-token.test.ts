// `sidecarless control-plane token`: prints a token the embedded CA accepts, for the workload named;
// help; usage errors that say what to change; a state directory that is not one. One run of the
// built CLI as a process (what a user runs); the other cases through main() in this process.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { main } from '../../src/cli/run.js';
import { tokenAuthenticator } from '../../src/server/ca/ca-service.js';
import { openCaState } from '../../src/server/ca/state.js';
import { ownTokenPolicy, verifyToken } from '../../src/server/ca/tokens.js';
import { assertError, sidecarless } from '../e2e/cli-run.js';
import { tempDirFor } from '../helpers/tmp.js';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => (stdout += s.endsWith('\n') ? s : s + '\n'), stderr: (s) => (stderr += s.endsWith('\n') ? s : s + '\n') });
  return { code, stdout, stderr };
}

const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number; iat: number };

test('the built CLI prints one token, which the CA takes as spiffe://<td>/ns/NS/sa/SA', async (t) => {
  const dir = join(tempDirFor(t, 'sidecarless-cp-token-'), 'state');
  const state = await openCaState(dir, { trustDomain: 'cluster.local' });
  const r = await sidecarless(['control-plane', 'token', '--state', dir, '--namespace', 'shop', '--service-account', 'orders']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, 'only the token on stdout');
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${lines[0]}`);
  assert.deepEqual(tokenAuthenticator({ state, trustDomain: 'cluster.local' })(md), { spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders', namespace: 'shop', serviceAccount: 'orders', issuer: 'sidecarless-control-plane' });
  const c = claims(lines[0]!);
  assert.equal(c.exp - c.iat, 3600, 'default 1 h');
  // --ttl, in process
  const two = await run(['control-plane', 'token', '--state', dir, '--namespace', 'shop', '--service-account', 'orders', '--ttl', '2h']);
  assert.equal(two.code, 0, two.stderr);
  const tok = two.stdout.trim();
  assert.equal(claims(tok).exp - claims(tok).iat, 7200);
  assert.equal(verifyToken(tok, ownTokenPolicy(state.tokenKey), Date.now()).namespace, 'shop');
});

test('--help, usage errors and a directory that is no control plane’s state', async (t) => {
  const help = await run(['control-plane', 'token', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: sidecarless control-plane token --state DIR --namespace NS --service-account SA \[--ttl 1h\]/);
  const missing = await run(['control-plane', 'token', '--state', '/nowhere', '--namespace', 'default']);
  assertError(missing, 2, 'ERR_SIDECARLESS_USAGE', /service-account/);
  const badNs = await run(['control-plane', 'token', '--state', '/nowhere', '--namespace', 'Bad_NS', '--service-account', 'a']);
  assertError(badNs, 2, 'ERR_SIDECARLESS_USAGE', /--namespace: namespace "Bad_NS" is not a Kubernetes namespace/);
  const long = await run(['control-plane', 'token', '--state', '/nowhere', '--namespace', 'a', '--service-account', 'a', '--ttl', '48h']);
  assertError(long, 2, 'ERR_SIDECARLESS_USAGE', /at most 24h/);
  const empty = tempDirFor(t, 'sidecarless-cp-token-');
  const none = await run(['control-plane', 'token', '--state', empty, '--namespace', 'a', '--service-account', 'a']);
  assertError(none, 1, 'ERR_SIDECARLESS_CA_STATE_INVALID', /is not the state directory of a control plane yet\. Start "sidecarless control-plane --state/);
});
