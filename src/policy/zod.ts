/**
 * schema.ts (the zod schema of the native policy) for model.ts, which must not load it at import:
 * cold start (issue 14). Tests run the sources unbundled: a static import here; the build takes
 * zod.bundle.ts (see src/config/zod.ts).
 */
import * as schema from './schema.js';

export const policySchema = (): typeof schema => schema;
