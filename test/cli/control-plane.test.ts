// `sidecarless control-plane` as a user runs it (the built CLI, a real process): it starts fast,
// prints what it serves (the root clients pin first), keeps keys 0600, answers
// `sidecarless control-plane status` (human and --json), shows a rejected mesh-file edit, stops
// on SIGTERM with exit 0; a bad mesh file at start is refused with file:line; help lists the
// sub-commands.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { main } from '../../src/cli/run.js';
import { CLI, ROOT } from '../e2e/process.js';
import { assertError, sidecarless } from '../e2e/cli-run.js';
import { waitFor } from '../helpers/net.js';
import { tempDirFor } from '../helpers/tmp.js';

const MESH = 'services:\n  - name: payments\n    port: 8443\n    endpoints: [127.0.0.1:9001]\n';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => (stdout += s.endsWith('\n') ? s : s + '\n'), stderr: (s) => (stderr += s.endsWith('\n') ? s : s + '\n') });
  return { code, stdout, stderr };
}

test('it starts in well under a second, prints what it serves, answers status, shows a rejected edit, and stops on SIGTERM', async (t) => {
  const dir = tempDirFor(t, 'sidecarless-cp-cli-');
  await writeFile(join(dir, 'mesh.yaml'), MESH);
  const state = join(dir, 'state');
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, 'control-plane', '--config', join(dir, 'mesh.yaml'), '--state', state, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--plaintext-listen', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  await waitFor(() => lines.some((l) => l.startsWith('status on ')), 10_000, 'the start lines');
  const startMs = Date.now() - started;
  assert.match(lines[0]!, new RegExp(`^control plane serving ADS \\+ CA on 127\\.0\\.0\\.1:\\d+ \\(TLS\\); clients pin ${join(state, 'root-cert.pem').replace(/[.]/g, '\\.')}$`));
  assert.match(lines[1]!, /^ADS only, plaintext, on 127\.0\.0\.1:\d+ \(no CA, no registration\)$/, 'a bare port is loopback');
  // Process start included (node + the CLI's imports); the budget is generous for a loaded CI machine.
  assert.ok(startMs < 5_000, `started in ${startMs} ms`);
  for (const key of ['root-key.pem', 'token-key.pem']) assert.equal(statSync(join(state, key)).mode & 0o777, 0o600, key);
  assert.equal(statSync(state).mode & 0o777, 0o700);
  const admin = /status on (http:\/\/[^/]+)\/status/.exec(lines.find((l) => l.startsWith('status on '))!)![1]!;

  const human = await sidecarless(['control-plane', 'status', '--admin', admin]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^services \(1\)\n {2}payments\.default:8443 {2}http {2}127\.0\.0\.1:9001 static$/m);
  assert.match(human.stdout, /^clients \(0\)$/m);
  const json = JSON.parse((await run(['control-plane', 'status', '--admin', admin, '--json'])).stdout) as { meshFile: { version: string; rejected?: { message: string } } };
  assert.equal(json.meshFile.rejected, undefined);

  await writeFile(join(dir, 'mesh.yaml'), MESH.replace('port: 8443', 'port: 99999'));
  await waitFor(() => /mesh file .* rejected, still serving version/.test(stderr), 10_000, 'the rejection logged');
  const after = await sidecarless(['control-plane', 'status', '--admin', admin]);
  assert.match(after.stdout, /REJECTED EDIT at .* \(still serving the version above\): [^]*mesh\.yaml:3:11 services\[0\]\.port: must be a port/);
  assert.match(after.stdout, new RegExp(`version ${json.meshFile.version}`), 'the last good version is served');

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.ok(lines.includes('control plane stopping'));
});

test('a bad mesh file at start is refused with file:line; status with nothing listening says what to do; help lists the sub-commands', async (t) => {
  const dir = tempDirFor(t, 'sidecarless-cp-cli-');
  await writeFile(join(dir, 'mesh.yaml'), 'services:\n  - name: payments\n    prot: 8443\n');
  const bad = await run(['control-plane', '--config', join(dir, 'mesh.yaml'), '--state', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  assertError(bad, 1, 'ERR_SIDECARLESS_MESH_FILE', /mesh\.yaml:3:5 services\[0\]/);
  const none = await run(['control-plane', 'status', '--admin', 'http://127.0.0.1:1']);
  assertError(none, 1, 'ERR_SIDECARLESS_CONTROL_PLANE_STATUS', /is "sidecarless control-plane" running/);
  const help = await run(['control-plane', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: sidecarless control-plane --config FILE/);
  assert.match(help.stdout, /control-plane token/);
  assert.match(help.stdout, /control-plane status/);
  const usage = await run(['control-plane']);
  assertError(usage, 2, 'ERR_SIDECARLESS_USAGE', /--config/);
});
