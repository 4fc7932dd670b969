// @peculiar/x509 loaded eagerly, for tests that craft certificates. (src/ loads it lazily through
// loadX509 in src/identity/x509.ts, only where certificates are created.) reflect-metadata first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
