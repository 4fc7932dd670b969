// Write your own X509Source: the workload's SVID from environment variables (PEM text), or from
// the files they name (`*_FILE`: a mounted Kubernetes or Docker secret), verified with the kit
// sidecarless exports and served by its SourceCore (expiry at use time, rotations, status).
//
//   npx tsx examples/custom-source/env-source.ts
//
// With SVID_CERT_PEM(_FILE), SVID_KEY_PEM(_FILE) and SVID_BUNDLE_PEM(_FILE) set (say, to the
// files `sidecarless svid issue` writes), payments serves with that SVID. Without them, it issues
// one from an in-process dev CA first, so the example runs with one command.
import { readFileSync } from 'node:fs';
import {
  CoreBackedSource,
  SourceCore,
  buildSvid,
  bundlesFromPem,
  createDevCa,
  createMesh,
  peerOf,
  systemClock,
  type Clock,
} from 'sidecarless';

/** One PEM value: the variable itself, or the file `<name>_FILE` names. */
function pemFrom(env: NodeJS.ProcessEnv, name: string): string {
  const inline = env[name];
  if (inline) return inline;
  const file = env[`${name}_FILE`];
  if (file) return readFileSync(file, 'utf8');
  throw new Error(`set ${name} (PEM text) or ${name}_FILE (a path to it)`);
}

export class EnvSource extends CoreBackedSource {
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    clock: Clock = systemClock,
  ) {
    super(new SourceCore('env', clock, 'environment variables SVID_*'));
  }

  /**
   * Reads the PEM again and serves it if it is a consistent, valid set: key matches leaf, chain
   * verifies against the bundle of the leaf's own trust domain, valid now. Otherwise the previous
   * SVID stays and the error shows in status().lastError. Call it when the secret changes.
   */
  refresh(): void {
    try {
      const cert = pemFrom(this.env, 'SVID_CERT_PEM');
      // The leaf's own trust domain names roots without a trust-domain SAN (spiffe-helper's layout).
      const trustDomain = this.env.SVID_TRUST_DOMAIN ?? 'cluster.local';
      const bundles = bundlesFromPem(pemFrom(this.env, 'SVID_BUNDLE_PEM'), trustDomain);
      this.core.accept(buildSvid(cert, pemFrom(this.env, 'SVID_KEY_PEM'), bundles, this.core.clock.now()), bundles);
    } catch (e) {
      this.core.fail(e as Error);
    }
  }

  async close(): Promise<void> {
    this.core.close();
  }
}

const PAYMENTS = 'spiffe://cluster.local/ns/default/sa/payments';
const env = { ...process.env };
const own = !env.SVID_CERT_PEM && !env.SVID_CERT_PEM_FILE;
const ca = await createDevCa();
if (own) {
  const svid = await ca.issue({ spiffeId: PAYMENTS });
  env.SVID_CERT_PEM = svid.certChainPem;
  env.SVID_KEY_PEM = svid.keyPem;
  env.SVID_BUNDLE_PEM = svid.bundlePem;
}

const source = new EnvSource(env);
source.refresh();
const payments = await createMesh({ service: 'payments', identity: { source }, logger: { info() {}, warn() {}, error: console.error } });
const server = payments.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ server: payments.spiffeId, caller: peerOf(req)?.spiffeId ?? null }));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as { port: number };
console.log(`payments serves ${source.getX509Svid().spiffeId.id} from ${own ? 'an in-process dev CA, through env' : 'the SVID_* environment'}`);

// A caller: with our own dev CA, its SVID is issued by the same CA; otherwise it needs one from
// the CA that issued payments', given as ORDERS_IDENTITY_DIR.
const orders = await createMesh({
  service: 'orders',
  identity: own ? { ca } : { dir: process.env.ORDERS_IDENTITY_DIR! },
  logger: { info() {}, warn() {}, error: console.error },
  outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } },
});
const res = await orders.fetch('http://payments/whoami');
console.log(`orders → payments: ${res.status} ${await res.text()}`);

// A bad update (a key that is not the leaf's) is refused whole; the previous SVID keeps serving.
const other = await ca.issue({ spiffeId: PAYMENTS });
env.SVID_KEY_PEM = other.keyPem; // the source reads this same object
source.refresh();
console.log(`bad update: ${source.status().lastError}`);
const again = await orders.fetch('http://payments/whoami');
console.log(`still serving: ${again.status} ${source.status().state}`);

await orders.close();
server.close();
await payments.close();
await source.close();
