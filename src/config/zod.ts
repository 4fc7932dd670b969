/**
 * config.ts (the zod schemas of the options) for code that must not load it at import: cold start
 * (issue 14). Tests run the sources unbundled, so here it is a static import; the build takes
 * zod.bundle.ts instead (tsup.config.ts, `bundleVariants`), where it is a require() the bundler
 * resolves inside the bundle: config.ts and zod are then evaluated the first time this is called.
 */
import * as config from '../config.js';

export const configModule = (): typeof config => config;
