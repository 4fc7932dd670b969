import { createRequire } from 'node:module';
import type * as Undici from 'undici';

let undici: typeof Undici | undefined;

/**
 * undici (~20 MB RSS, ~70 ms to import), loaded on first outbound use, so a process that only
 * serves never loads it. Through require, which works in the ESM and the CJS build alike (a static
 * import would be hoisted to the top of the bundled dist file); undici is a CommonJS package, so
 * this is the same module instance an app's own `import ... from 'undici'` gets.
 */
export function loadUndici(): typeof Undici {
  return (undici ??= createRequire(import.meta.url)('undici') as typeof Undici);
}
