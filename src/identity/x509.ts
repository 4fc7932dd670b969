// @peculiar/x509 (with reflect-metadata, tsyringe and the asn1 packages: ~20 MB and ~140 ms to
// import) is needed only where certificates are CREATED: the dev CA and CSRs. Verification uses
// node:crypto and der.ts. So it is loaded on first use, by dynamic import of the packages
// themselves (a static import here would be hoisted to the top of the bundled dist file), and a
// process that only verifies never loads it. reflect-metadata must be loaded before it.
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

let loading: Promise<typeof X509> | undefined;

/** The @peculiar/x509 module, loaded once, with node's webcrypto as its provider. */
export function loadX509(): Promise<typeof X509> {
  loading ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
    return x509;
  })();
  loading.catch(() => {
    loading = undefined; // let a later call try again
  });
  return loading;
}
