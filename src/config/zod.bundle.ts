// The build's zod.ts (see there): config.ts, and zod with it, on first use. esbuild turns this
// require() of a file of the bundle into a call of its lazy initialiser, in the ESM and CJS builds.
type Config = typeof import('../config.js');

let config: Config | undefined;

export const configModule = (): Config => (config ??= require('../config.js') as Config);
