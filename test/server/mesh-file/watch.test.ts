// watchMeshFile with real files in a temp directory and real fs.watch (no polling: pollMs 0, so
// fs.watch alone must see every change): an edit gives a new model; a bad edit gives onError and
// no model (the caller keeps the last good one); rename-replace as editors do it; a policy file
// edit reloads; the good text back clears the error; a throwing callback does not stop it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshFileError, watchMeshFile, type MeshModel } from '../../../src/server/mesh-file/index.js';

type Event = { model: MeshModel } | { error: Error };

/** Events in arrival order; next() waits for the next one (at most 2 s, so a missed change fails rather than hangs). */
function queue() {
  const events: Event[] = [];
  const waiters: Array<(e: Event) => void> = [];
  const push = (e: Event) => (waiters.length ? waiters.shift()!(e) : events.push(e));
  const next = (): Promise<Event> =>
    events.length
      ? Promise.resolve(events.shift()!)
      : new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('no event within 2 s')), 2000);
          waiters.push((e) => {
            clearTimeout(t);
            resolve(e);
          });
        });
  return { push, next, pending: () => events.length };
}

const mesh = (weight: number) => `services:
  - name: payments
    port: 8443
    split: [{ service: payments, weight: ${weight} }, { service: payments-v2, weight: ${100 - weight} }]
  - name: payments-v2
    port: 8443
policies:
  - file: policies/p.yaml
`;
const policy = (path: string) => `rules:\n  - action: deny\n    to: [{ paths: [${path}] }]\n`;

async function model(q: ReturnType<typeof queue>): Promise<MeshModel> {
  const e = await q.next();
  if ('error' in e) assert.fail(`expected a model, got ${e.error.message}`);
  return e.model;
}
async function error(q: ReturnType<typeof queue>): Promise<Error> {
  const e = await q.next();
  if ('model' in e) assert.fail('expected an error, got a model');
  return e.error;
}
const weights = (m: MeshModel) => m.services[0]!.split!.map((b) => b.weight);

test('edits, bad edits, rename-replace and policy edits reload whole; the last good model stays', async () => {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'mesh-file-watch-'));
  const file = join(dir, 'mesh.yaml');
  mkdirSync(join(dir, 'policies'));
  writeFileSync(file, mesh(90));
  writeFileSync(join(dir, 'policies', 'p.yaml'), policy('/admin'));
  const q = queue();
  let throwOnce = false;
  const w = watchMeshFile(file, {
    debounceMs: 15,
    pollMs: 0,
    onModel: (m) => {
      q.push({ model: m });
      if (throwOnce) {
        throwOnce = false;
        throw new Error('the caller failed');
      }
    },
    onError: (e) => q.push({ error: e }),
  });
  try {
    // Without `current`, the file is loaded at once.
    const first = await model(q);
    assert.deepEqual(weights(first), [90, 10]);

    writeFileSync(file, mesh(50));
    const second = await model(q);
    assert.deepEqual(weights(second), [50, 50]);
    assert.notEqual(second.version, first.version);

    // A bad edit: onError names the file and line; no model (the caller keeps `second`).
    writeFileSync(file, mesh(50).replace('port: 8443', 'port: 99999'));
    const bad = await error(q);
    assert.ok(bad instanceof MeshFileError);
    assert.deepEqual([bad.issues[0]!.file, bad.issues[0]!.line, bad.issues[0]!.path], [file, 3, 'services[0].port']);

    // The good text back: reported again (the error is over), same version as before.
    writeFileSync(file, mesh(50));
    assert.equal((await model(q)).version, second.version);

    // Rename-replace, as editors and ConfigMap volumes do it.
    writeFileSync(join(dir, '.mesh.yaml.swp'), mesh(10));
    renameSync(join(dir, '.mesh.yaml.swp'), file);
    assert.deepEqual(weights(await model(q)), [10, 90]);

    // A policy file edit reloads the whole model.
    writeFileSync(join(dir, 'policies', 'p.yaml'), policy('/debug'));
    const withPolicy = await model(q);
    assert.deepEqual(withPolicy.policy.rules[0]!.to[0]!.paths, ['/debug']);

    // A bad policy edit: the error names the policy file; then a rename-replace of it fixes it.
    writeFileSync(join(dir, 'policies', 'p.yaml'), 'rules:\n  - action: maybe\n');
    const pe = await error(q);
    assert.ok(pe instanceof MeshFileError);
    assert.deepEqual([pe.issues[0]!.file, pe.issues[0]!.line], [join(dir, 'policies', 'p.yaml'), 2]);
    writeFileSync(join(dir, 'policies', 'p.new'), policy('/metrics'));
    renameSync(join(dir, 'policies', 'p.new'), join(dir, 'policies', 'p.yaml'));
    assert.deepEqual((await model(q)).policy.rules[0]!.to[0]!.paths, ['/metrics']);

    // The same bytes written again give no model; a file beside it that is not named changes nothing;
    // and a caller that throws is told through onError while the watcher goes on.
    writeFileSync(file, mesh(10));
    writeFileSync(join(dir, 'notes.txt'), 'not the mesh file');
    throwOnce = true;
    writeFileSync(file, mesh(30));
    assert.deepEqual(weights(await model(q)), [30, 70]);
    assert.equal((await error(q)).message, 'the caller failed');
    writeFileSync(file, mesh(40));
    assert.deepEqual(weights(await model(q)), [40, 60]);
    assert.equal(q.pending(), 0);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
});

test('what fs.watch misses, the poll finds: a policy directory created after the watcher started', async () => {
  const { VirtualClock } = await import('../../../src/clock.js');
  const { loadMeshFile } = await import('../../../src/server/mesh-file/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'mesh-file-poll-'));
  const file = join(dir, 'mesh.yaml');
  writeFileSync(file, 'services: []\n');
  const current = await loadMeshFile(file);
  const clock = new VirtualClock();
  const q = queue();
  const w = watchMeshFile(file, { current, clock, debounceMs: 10, pollMs: 1000, onModel: (m) => q.push({ model: m }), onError: (e) => q.push({ error: e }) });
  try {
    // The mesh file names a policy file in a directory that does not exist yet: refused.
    writeFileSync(file, 'services: []\npolicies: [{ file: later/p.yaml }]\n');
    let e: Event | undefined;
    const step = async () => {
      for (let i = 0; i < 200 && q.pending() === 0; i++) {
        await clock.advanceAsync(1000);
        await new Promise((r) => setTimeout(r, 1));
      }
      return q.next();
    };
    e = await step();
    assert.ok('error' in e && e.error instanceof MeshFileError && /cannot read the policy file/.test(e.error.message));
    // The directory appears with the file in it: nothing watched it, the poll sees the file.
    mkdirSync(join(dir, 'later'));
    writeFileSync(join(dir, 'later', 'p.yaml'), policy('/x'));
    e = await step();
    assert.ok('model' in e, 'error' in e ? e.error.message : '');
    assert.deepEqual(e.model.policyFiles, [join(dir, 'later', 'p.yaml')]);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a Kubernetes ConfigMap volume: the ..data symlink swapped under mesh.yaml reloads it (fs.watch alone)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-file-configmap-'));
  const file = join(dir, 'mesh.yaml');
  const version = (name: string, weight: number) => {
    mkdirSync(join(dir, name));
    mkdirSync(join(dir, name, 'policies'));
    writeFileSync(join(dir, name, 'mesh.yaml'), mesh(weight));
    writeFileSync(join(dir, name, 'policies', 'p.yaml'), policy('/admin'));
  };
  version('..2026_a', 90);
  symlinkSync('..2026_a', join(dir, '..data'));
  symlinkSync('..data/mesh.yaml', file);
  symlinkSync('..data/policies', join(dir, 'policies'));
  const q = queue();
  const w = watchMeshFile(file, { debounceMs: 15, pollMs: 0, onModel: (m) => q.push({ model: m }), onError: (e) => q.push({ error: e }) });
  try {
    assert.deepEqual(weights(await model(q)), [90, 10]);
    version('..2026_b', 20);
    symlinkSync('..2026_b', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    assert.deepEqual(weights(await model(q)), [20, 80]);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
