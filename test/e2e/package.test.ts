// The package as published: what `npm pack` puts in it, that every relative link of the README and
// docs/ lands on a file (and heading) inside it, its license and metadata, and that `npm run demo`
// builds JavaScript only, silently (no declarations: they are most of a full build's time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { ROOT, run, tempDir } from './process.js';
import { packList } from './pack.js';

interface Link {
  file: string;
  line: number;
  target: string;
}

const blank = (s: string) => s.replace(/[^\n]/g, ' ');

/** Markdown without fenced code blocks, lines kept. */
function withoutFences(text: string): string {
  return text.replace(/^( {0,3})(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\2[^\n]*$/gm, blank);
}

/** Markdown without fenced code blocks and code spans (what looks like a link there is not one), lines kept. */
function prose(text: string): string {
  return withoutFences(text).replace(/(`+)(?!`)[\s\S]*?[^`]\1(?!`)/g, blank);
}

/** Inline links and images `[text](target "title")`, reference definitions `[x]: target`, and HTML href/src. */
function linksOf(file: string, text: string): Link[] {
  const body = prose(text);
  const out: Link[] = [];
  const lineAt = (i: number) => body.slice(0, i).split('\n').length;
  for (const m of body.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) out.push({ file, line: lineAt(m.index!), target: m[1]! });
  for (const m of body.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) out.push({ file, line: lineAt(m.index!), target: m[1]! });
  for (const m of body.matchAll(/\b(?:href|src)\s*=\s*["']([^"']+)["']/g)) out.push({ file, line: lineAt(m.index!), target: m[1]! });
  return out;
}

/** GitHub's heading anchors (github-slugger): lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of withoutFences(text).matchAll(/^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = m[1]!
      .replace(/<[^>]+>/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

let packing: Promise<string[]> | undefined;
/** The pack list, asked of npm once for this file. */
const published = () => (packing ??= packList());

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

async function docFiles(): Promise<string[]> {
  const docs = (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  return ['README.md', ...docs.sort()];
}

test('the link checker sees links, skips code, and computes GitHub anchors', () => {
  const md = [
    'See [a](docs/a.md), [b](<docs/b.md> "title") and ![img](img/x.png).',
    '`[not](a/link.md)` and',
    '```md',
    '[also not](x.md)',
    '```',
    '[ref]: ../outside.md',
    '<a href="sub/page.md#part">x</a> [web](https://example.com/x.md) [here](#install)',
    '## Install (from a clone) — `npm`',
    '## Install (from a clone) — `npm`',
  ].join('\n');
  assert.deepEqual(
    linksOf('README.md', md).map((l) => `${l.line}:${l.target}`).sort(),
    ['1:docs/a.md', '1:docs/b.md', '1:img/x.png', '6:../outside.md', '7:#install', '7:https://example.com/x.md', '7:sub/page.md#part'],
  );
  assert.deepEqual([...anchorsOf(md)], ['install-from-a-clone--npm', 'install-from-a-clone--npm-1']);
});

test('every relative link in README.md and docs/*.md resolves to a file in the published package', { timeout: 60_000 }, async () => {
  const inPack = new Set(await published());
  const files = await docFiles();
  for (const f of files) assert.ok(inPack.has(f), `${f} is published`);
  const anchors = new Map<string, Set<string>>();
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    const text = await readFile(join(ROOT, file), 'utf8');
    anchors.set(file, anchorsOf(text));
    for (const link of linksOf(file, text)) {
      if (isExternal(link.target)) continue;
      checked++;
      const [pathPart, fragment] = link.target.split('#', 2) as [string, string | undefined];
      const where = `${link.file}:${link.line}: ${link.target}`;
      if (pathPart.startsWith('/')) {
        broken.push(`${where} (an absolute path: nothing outside the package resolves)`);
        continue;
      }
      const target = pathPart === '' ? file : normalize(join(dirname(file), decodeURIComponent(pathPart))).split(sep).join('/');
      if (target.startsWith('..') || !inPack.has(target)) {
        broken.push(`${where} → ${target} is not in the package (npm pack --dry-run)`);
        continue;
      }
      if (fragment !== undefined && target.endsWith('.md')) {
        const known = anchors.get(target) ?? anchorsOf(await readFile(join(ROOT, target), 'utf8'));
        anchors.set(target, known);
        if (!known.has(fragment)) broken.push(`${where} → no heading #${fragment} in ${target}`);
      }
    }
  }
  assert.deepEqual(broken, [], `links that do not resolve inside the published package:\n${broken.join('\n')}`);
  assert.ok(checked >= 20, `only ${checked} relative links found: the checker is not reading the docs`);
});

test('the package: LICENSE (Apache-2.0), metadata, optional peers, nothing but dist/docs/README/LICENSE', { timeout: 60_000 }, async () => {
  const list = await published();
  const license = await readFile(join(ROOT, 'LICENSE'), 'utf8');
  assert.match(license, /^\s*Apache License\s+Version 2\.0, January 2004/);
  assert.match(license, /END OF TERMS AND CONDITIONS/);
  assert.match(license, /Copyright \d{4} the sidecarless authors/);
  assert.ok(list.includes('LICENSE'));
  const bad = list.filter((p) => !/^(dist\/|docs\/|README\.md$|LICENSE$|package\.json$)/.test(p));
  assert.deepEqual(bad, [], 'only the build, the docs, the README and the license are published');
  assert.ok(!list.some((p) => /\.(pem|key)$/.test(p)), 'no key material');
  for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/cli.js']) assert.ok(list.includes(f), f);

  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.license, 'Apache-2.0');
  assert.equal(pkg.repository.url, 'git+https://github.com/sidecarless/sidecarless.git');
  assert.equal(pkg.homepage, 'https://github.com/sidecarless/sidecarless#readme');
  assert.equal(pkg.bugs.url, 'https://github.com/sidecarless/sidecarless/issues');
  assert.ok(pkg.keywords.includes('spiffe') && pkg.keywords.includes('service-mesh'));
  for (const peer of Object.keys(pkg.peerDependencies)) {
    assert.equal(pkg.peerDependenciesMeta[peer]?.optional, true, `${peer} is an optional peer`);
  }
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /^## Install\n[\s\S]*?npm install sidecarless/m);
});

test('npm run demo builds JavaScript only, and silently', { timeout: 60_000 }, async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.demo!, /^npm run build:js --silent && node dist\/cli\.js demo$/);
  // The runner type-checks alongside the tests (scripts/run-tests.mjs --typecheck; a type error fails it).
  assert.match(pkg.scripts.test!, /^npm run build --silent && node scripts\/run-tests\.mjs --typecheck$/, 'npm test still builds declarations and type-checks');
  // The demo's build, into a directory of its own (dist/ is in use by the other tests).
  const out = await tempDir(t);
  const r = await run('npm', ['run', 'build:js', '--silent', '--', '--out-dir', out], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout + r.stderr, '', 'no build noise');
  const built = (await readdir(out)).sort();
  assert.ok(built.includes('cli.js') && built.includes('index.js') && built.includes('index.cjs'), built.join(' '));
  assert.deepEqual(built.filter((f) => f.endsWith('.d.ts') || f.endsWith('.d.cts')), [], 'no declarations');
});
