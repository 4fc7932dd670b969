// The build's zod.ts (see there): schema.ts and zod on the first policy with rules or servers.
type Schema = typeof import('./schema.js');

let schema: Schema | undefined;

export const policySchema = (): Schema => (schema ??= require('./schema.js') as Schema);
