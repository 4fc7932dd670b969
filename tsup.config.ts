import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig, type Options } from 'tsup';

/**
 * `x.ts` with a sibling `x.bundle.ts`: the build takes the sibling. The pair loads a part of the
 * package on first use (src/config/zod.ts: config.ts and zod): the sources, which tests run
 * unbundled, import it statically; the bundle require()s it, which esbuild resolves inside the
 * bundle into a lazy initialiser, in the ESM and the CJS build (cold start, issue 14).
 */
const bundleVariants: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'bundle-variants',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (a) => {
      const variant = resolve(a.resolveDir, a.path.replace(/\.js$/, '.bundle.ts'));
      return existsSync(variant) && !a.importer.endsWith('.bundle.ts') ? { path: variant } : undefined;
    });
  },
};

/**
 * zod through require(), where the sources import it: an external package is a static import at
 * the top of the ESM build, loaded with the package however lazily the modules that use it are
 * initialised. Read through createRequire inside the module that needs it (zod's CommonJS build),
 * it loads when that module is first initialised (config.ts, the policy schema: src/config/zod.ts).
 */
const lazyZod: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'lazy-zod',
  setup(build) {
    build.onResolve({ filter: /^zod$/ }, (a) => (a.importer.includes('/src/') ? { path: 'zod', namespace: 'lazy-zod' } : undefined));
    build.onResolve({ filter: /^lazy-zod:require$/ }, () => ({ path: 'require', namespace: 'lazy-zod' }));
    // A CommonJS module of the bundle is evaluated when first required (ESM ones may be hoisted).
    build.onLoad({ filter: /^zod$/, namespace: 'lazy-zod' }, () => ({ contents: "module.exports = require('lazy-zod:require').load('zod');\n", loader: 'js' }));
    build.onLoad({ filter: /^require$/, namespace: 'lazy-zod' }, () => ({
      contents: "import { createRequire } from 'node:module';\nexport const load = (id) => createRequire(import.meta.url)(id);\n",
      loader: 'js',
    }));
  },
};

/**
 * The serverless entry imports the mesh as the package itself ('sidecarless': the main entry's
 * ESM or CJS file, by the package's self-reference) instead of bundling a second copy of it: tsup
 * splits no CJS, and one copy means one mesh implementation in the process (docs/serverless.md).
 */
const meshAsPackage = {
  name: 'mesh-as-package',
  setup(build: { onResolve(o: { filter: RegExp }, cb: () => { path: string; external: boolean }): void }) {
    build.onResolve({ filter: /^\.\.\/mesh\.js$/ }, () => ({ path: 'sidecarless', external: true }));
  },
};

export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    // stripInternal: members marked @internal stay out of the published .d.ts (test/contract.test.ts).
    dts: { compilerOptions: { stripInternal: true } },
    sourcemap: true,
    clean: true,
    target: 'node20',
    shims: true,
    splitting: false,
    esbuildPlugins: [bundleVariants, lazyZod],
    noExternal: ['zod'], // leaves zod to lazyZod (tsup's own plugin would make it a plain external)
  },
  {
    entry: { serverless: 'src/serverless/index.ts' },
    format: ['esm', 'cjs'],
    dts: { compilerOptions: { stripInternal: true } },
    sourcemap: true,
    target: 'node20',
    splitting: false,
    esbuildPlugins: [meshAsPackage],
  },
  {
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    esbuildPlugins: [bundleVariants, lazyZod],
    splitting: true, // each command (and its dependencies) loaded when it runs: `sidecarless --version` does not load grpc-js
  },
]);
