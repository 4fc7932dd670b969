// @peculiar/x509 (with reflect-metadata, tsyringe and the asn1 packages: ~20 MB and ~140 ms to
// import) is needed only where certificates are CREATED: the dev CA (CSRs: csr.ts). Verification uses
// node:crypto and der.ts. So it is loaded on first use, and a process that only verifies never
// loads it. Through require, like undici and yaml: a static import here would be hoisted to the
// top of the bundled dist file, and an `import()` in dist makes tsx (which the bench and tests run
// under) re-transform and source-map the whole bundle, ~15 MB of RSS. reflect-metadata first.
import { webcrypto } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as X509 from '@peculiar/x509';

let x509: typeof X509 | undefined;

/** The @peculiar/x509 module, loaded once, with node's webcrypto as its provider. */
export function loadX509(): typeof X509 {
  if (!x509) {
    const load = createRequire(import.meta.url);
    load('reflect-metadata');
    const lib = load('@peculiar/x509') as typeof X509;
    lib.cryptoProvider.set(webcrypto as unknown as Crypto);
    x509 = lib;
  }
  return x509;
}
