/**
 * The intruder: a workload of another trust domain (its own CA) that knows payments' address and
 * our public root, and dials payments-1 directly. Payments refuses it during the TLS handshake.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDevCa } from '../../identity/dev-ca.js';
import { createMesh } from '../../mesh.js';
import { BUNDLE_FILE, KEY_FILE, SVID_FILE } from '../../sources/dir.js';
import { idOf } from './mesh-files.js';
import type { Replica, Stage } from './stage.js';

export const INTRUDER_ID = 'spiffe://evil.example/ns/default/sa/orders';

export async function sceneIntruder(s: Stage, target: Replica): Promise<void> {
  const dir = join(s.work, 'intruder');
  await mkdir(dir, { recursive: true });
  const evil = await createDevCa({ trustDomain: 'evil.example' });
  const svid = await evil.issue({ spiffeId: INTRUDER_ID });
  await writeFile(join(dir, SVID_FILE), svid.certChainPem);
  await writeFile(join(dir, KEY_FILE), svid.keyPem, { mode: 0o600 });
  // Bundles are public: it trusts our root too, but its own certificate comes from another CA.
  await writeFile(join(dir, BUNDLE_FILE), svid.bundlePem + (await readFile(s.cp.rootFile, 'utf8')));
  const mesh = await createMesh({
    service: 'orders',
    trustDomain: 'evil.example',
    identity: { dir },
    logger: { info() {}, warn() {}, error() {} },
    outbound: { services: { payments: { endpoints: [`127.0.0.1:${target.port}`], identity: idOf('payments'), retry: false } } },
  });
  let outcome: { status?: number; error?: string };
  try {
    const res = await mesh.fetch('http://payments/charge', { method: 'POST', body: '{}' });
    outcome = { status: res.status };
    await res.text();
  } catch (e) {
    const err = e as Error & { cause?: Error };
    outcome = { error: err.cause?.message ?? err.message };
  } finally {
    await mesh.close();
  }
  const refused = outcome.status === undefined;
  s.say(
    refused
      ? `\n  intruder (${INTRUDER_ID}) → ${target.name} at 127.0.0.1:${target.port}   refused during the TLS handshake: its certificate comes from a CA payments does not trust (client saw: ${outcome.error})`
      : `\n  intruder → ${target.name}   GOT ${outcome.status}: THIS SHOULD NOT HAPPEN`,
  );
  s.check('intruder refused', refused);
}
