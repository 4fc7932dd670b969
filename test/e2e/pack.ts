// The package as npm publishes it: `npm pack` of the built dist, unpacked into a consumer's
// node_modules (real files, as `npm install <tarball>` leaves them, never a symlink to the repo).
// The consumer's other packages are links into this repository's node_modules, chosen one by one, so
// a test decides exactly what is resolvable (fastify or not, @opentelemetry/api or not) and runs
// offline and fast on CI after `npm ci`.
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT, run } from './process.js';

export interface PackedFile {
  path: string;
  size: number;
}

/** What `npm pack` would publish: the file list (paths relative to the package root). */
export async function packList(): Promise<string[]> {
  const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--silent'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `npm pack --dry-run failed:\n${r.stderr}`);
  const [info] = JSON.parse(r.stdout) as Array<{ files: PackedFile[] }>;
  return info!.files.map((f) => f.path);
}

/** `npm pack` into `dir`; returns the tarball's path. */
export async function pack(dir: string): Promise<string> {
  const r = await run('npm', ['pack', '--json', '--ignore-scripts', '--silent', '--pack-destination', dir], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `npm pack failed:\n${r.stderr}`);
  const [info] = JSON.parse(r.stdout) as Array<{ filename: string }>;
  return join(dir, info!.filename);
}

/** The package's own `dependencies` (what npm installs with it). */
export async function dependenciesOf(): Promise<string[]> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  return Object.keys(pkg.dependencies ?? {});
}

/**
 * A consumer project in `dir`: `package.json`, the tarball unpacked to node_modules/sidecarless,
 * and node_modules/<name> → this repository's copy for each of `links` (their own dependencies
 * resolve from there, as they would in a flat install).
 */
export async function consumer(dir: string, tarball: string, links: string[], pkg: Record<string, unknown> = {}): Promise<string> {
  const modules = join(dir, 'node_modules');
  const target = join(modules, 'sidecarless');
  await mkdir(target, { recursive: true });
  const r = await run('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
  assert.equal(r.code, 0, `unpacking ${tarball} failed:\n${r.stderr}`);
  assert.ok(!(await lstat(target)).isSymbolicLink());
  for (const name of links) {
    const link = join(modules, name);
    await mkdir(dirname(link), { recursive: true });
    await symlink(join(ROOT, 'node_modules', name), link, 'dir');
  }
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0', ...pkg }, null, 2));
  return dir;
}
