// Which grpc-js mesh.grpc builds with: a module lacking what it needs is refused with a stable
// code naming what is missing; another copy of grpc-js resolved from the app's directory is
// detected (the copy mismatch grpc-js reports only as "creds must be a ServerCredentials object").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { copyMismatchWarning, missingGrpcParts, otherGrpcCopy, ownGrpc, usableGrpc } from '../../src/grpc/module.js';
import { tempDirFor } from '../helpers/tmp.js';

test('a grpc-js module is usable; one lacking the certificate-provider credentials is refused, naming them', () => {
  assert.deepEqual(missingGrpcParts(grpc), []);
  assert.equal(usableGrpc(grpc as never, true), grpc);
  const old = { ...grpc, experimental: { ...grpc.experimental, createCertificateProviderChannelCredentials: undefined } };
  assert.throws(() => usableGrpc(old as never, true), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ERR_SIDECARLESS_GRPC_UNAVAILABLE');
    assert.match(e.message, /createMesh\(\{ grpc \}\) lacks experimental\.createCertificateProviderChannelCredentials: .*1\.12 or later/);
    return true;
  });
  assert.deepEqual(missingGrpcParts(null), ['the module itself']);
});

test('ownGrpc is the same grpc-js file the app resolves here: no copy mismatch from this directory', () => {
  assert.equal(ownGrpc().ServerCredentials, grpc.ServerCredentials, 'the same classes: credentials pass grpc-js instanceof checks');
  assert.equal(otherGrpcCopy(process.cwd()), undefined);
});

test('another copy of grpc-js under the app directory is found and named, with what to do', (t) => {
  const dir = tempDirFor(t);
  const pkg = join(dir, 'node_modules', '@grpc', 'grpc-js');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@grpc/grpc-js', version: '1.14.0', main: 'index.js' }));
  writeFileSync(join(pkg, 'index.js'), 'module.exports = {};');
  const theirs = otherGrpcCopy(dir);
  assert.equal(theirs, join(pkg, 'index.js'));
  const w = copyMismatchWarning(theirs!);
  assert.match(w, /^ERR_SIDECARLESS_GRPC_COPY_MISMATCH: /);
  assert.match(w, /createMesh\(\{ grpc: require\('@grpc\/grpc-js'\) \}\)/);
});
