// The build's zod.ts (see there): updates.ts, config.ts and zod on the first update. esbuild turns
// this require() of a file of the bundle into a call of its lazy initialiser.
type Updates = typeof import('../control-plane/updates.js');

let loaded: Updates | undefined;
const load = (): Updates => (loaded ??= require('../control-plane/updates.js') as Updates);

export const updates: Updates = new Proxy({} as Updates, { get: (_, name) => load()[name as keyof Updates] });
