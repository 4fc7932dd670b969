import { defineConfig } from 'tsup';

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
    splitting: true, // each command (and its dependencies) loaded when it runs: `sidecarless --version` does not load grpc-js
  },
]);
