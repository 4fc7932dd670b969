// inbound.jwtSvid.bundle.file: read on first use, re-read when it changes (checked at most once a
// second on the mesh's clock), the last good bundle kept through a bad write, a clear error
// before any good one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../src/clock.js';
import { JwtSvidUnavailableError } from '../../src/errors.js';
import { JwtBundleFile } from '../../src/sources/jwt-bundle-file.js';
import { makeKey } from '../identity/jwt-helpers.js';

test('re-read on change, at most once per check interval; a bad write keeps the last good bundle', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sls-jwks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bundle.json');
  const clock = new VirtualClock(1_000_000);
  const errors: Error[] = [];
  const f = new JwtBundleFile({ file, trustDomain: 'example.org', clock, onError: (e) => void errors.push(e) });
  await assert.rejects(f.bundle(), (e: unknown) => e instanceof JwtSvidUnavailableError && e.message.includes(file) && /ENOENT/.test(e.message));
  const k1 = makeKey('k1');
  const k2 = makeKey('k2');
  writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
  clock.advance(1000);
  assert.deepEqual([...(await f.bundle()).keys.keys()], ['k1']);
  writeFileSync(file, JSON.stringify({ keys: [k1.jwk, k2.jwk], spiffe_sequence: 2 }));
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  assert.deepEqual([...(await f.bundle()).keys.keys()], ['k1'], 'not checked again within the interval');
  clock.advance(1000);
  assert.deepEqual([...(await f.bundle()).keys.keys()], ['k1', 'k2']);
  writeFileSync(file, '{"keys": [ {"kty": "EC"} ]}');
  utimesSync(file, new Date(), new Date(Date.now() + 10_000));
  clock.advance(1000);
  assert.deepEqual([...(await f.bundle()).keys.keys()], ['k1', 'k2'], 'kept through a bad write');
  assert.match(errors.at(-1)!.message, /keeping the last good bundle/);
});
