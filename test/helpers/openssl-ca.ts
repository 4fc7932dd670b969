// Certificates made by the `openssl` CLI (keys by node:crypto, which makes every type quickly,
// DSA included): an outside toolchain for the chains our own dev CA refuses to make — weak keys
// (RSA 1024, DSA, odd curves) in leaves, intermediates and roots. Everything is written to a
// temporary directory only while it is signed; the caller removes it (no CA key is left behind).
import { execFile } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** rsa-<bits>, rsa-<bits>-e<public exponent>, dsa-<bits>, ec-<curve> (as node:crypto names it), ed25519, ed448. */
export type KeySpec = `rsa-${number}` | `rsa-${number}-e${number}` | `dsa-${number}` | `ec-${string}` | 'ed25519' | 'ed448';

/** A private key, PKCS#8 PEM. */
export async function makeKey(spec: KeySpec): Promise<string> {
  const gen = promisify(generateKeyPair) as unknown as (type: string, o: object) => Promise<{ privateKey: string }>;
  const enc = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } };
  const [type, arg] = spec.split(/-(.*)/s) as [string, string | undefined];
  switch (type) {
    case 'rsa': {
      const [bits, e] = arg!.split('-e');
      return (await gen('rsa', { modulusLength: Number(bits), ...(e && { publicExponent: Number(e) }), ...enc })).privateKey;
    }
    case 'dsa':
      return (await gen('dsa', { modulusLength: Number(arg), divisorLength: 256, ...enc })).privateKey;
    case 'ec':
      return (await gen('ec', { namedCurve: arg, ...enc })).privateKey;
    case 'ed25519':
    case 'ed448':
      return (await gen(type, enc)).privateKey;
  }
  throw new Error(`unknown key spec ${spec}`);
}

let counter = 0;

const CA_EXT = (td: string) => `basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectAltName=URI:spiffe://${td}\n`;
const LEAF_EXT = (id: string) =>
  `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:${id}\n`;

/** A certificate authority whose certificates `openssl x509 -req` signs. */
export class OpensslCa {
  private constructor(
    readonly work: string,
    readonly trustDomain: string,
    readonly certPem: string,
    readonly keyPem: string,
    /** The root's PEM: the trust bundle. */
    readonly bundlePem: string,
    /** This CA and the intermediates above it, leaf-side first, without the root (what svid.pem carries after the leaf). */
    readonly intermediatesPem: string,
  ) {}

  /** A self-signed root with a `spiffe://<td>` URI SAN. */
  static async root(work: string, trustDomain: string, key: KeySpec = 'ec-P-256'): Promise<OpensslCa> {
    const n = ++counter;
    const keyPem = await makeKey(key);
    const keyFile = join(work, `root-${n}.key`);
    const certFile = join(work, `root-${n}.pem`);
    await writeFile(keyFile, keyPem, { mode: 0o600 });
    await run('openssl', [
      'req', '-x509', '-new', '-key', keyFile, '-subj', `/O=openssl test root ${n} (${key})`, '-days', '2', '-out', certFile,
      '-set_serial', '0x' + serial(),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-addext', `subjectAltName=URI:spiffe://${trustDomain}`,
    ]);
    const certPem = await readFile(certFile, 'utf8');
    return new OpensslCa(work, trustDomain, certPem, keyPem, certPem, '');
  }

  /** An intermediate CA signed by this one. */
  async intermediate(key: KeySpec = 'ec-P-256'): Promise<OpensslCa> {
    const { certPem, keyPem } = await this.#sign(`openssl test intermediate ${counter + 1} (${key})`, key, CA_EXT(this.trustDomain));
    return new OpensslCa(this.work, this.trustDomain, certPem, keyPem, this.bundlePem, certPem + this.intermediatesPem);
  }

  /** An X.509-SVID for `spiffeId`: svid.pem (leaf, then the intermediates), its key, the bundle. */
  async leaf(spiffeId: string, key: KeySpec = 'ec-P-256'): Promise<{ certChainPem: string; keyPem: string; bundlePem: string }> {
    const { certPem, keyPem } = await this.#sign('SPIFFE', key, LEAF_EXT(spiffeId));
    return { certChainPem: certPem + this.intermediatesPem, keyPem, bundlePem: this.bundlePem };
  }

  async #sign(subject: string, key: KeySpec, ext: string): Promise<{ certPem: string; keyPem: string }> {
    const n = ++counter;
    const keyPem = await makeKey(key);
    const f = (s: string) => join(this.work, `c${n}.${s}`);
    const caKey = join(this.work, `ca${n}.key`);
    const caCert = join(this.work, `ca${n}.pem`);
    await Promise.all([
      writeFile(f('key'), keyPem, { mode: 0o600 }),
      writeFile(f('ext'), ext),
      writeFile(caKey, this.keyPem, { mode: 0o600 }),
      writeFile(caCert, this.certPem),
    ]);
    await run('openssl', ['req', '-new', '-key', f('key'), '-subj', `/O=${subject}`, '-out', f('csr')]);
    await run('openssl', [
      'x509', '-req', '-in', f('csr'), '-CA', caCert, '-CAkey', caKey, '-set_serial', '0x' + serial(), '-days', '1', '-extfile', f('ext'), '-out', f('pem'),
    ]);
    return { certPem: await readFile(f('pem'), 'utf8'), keyPem };
  }
}

function serial(): string {
  const b = randomBytes(12);
  b[0] = (b[0]! % 0x7f) + 1;
  return b.toString('hex');
}
