// @peculiar/x509 needs the reflect-metadata polyfill loaded before it; every module of this project
// imports the library through this file so the order is fixed in one place.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
