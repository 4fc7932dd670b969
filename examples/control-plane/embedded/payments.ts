// payments: charges for orders (policies/payments.yaml) and writes each charge to the ledger,
// which it finds by name through the control plane: no address anywhere.
import { peerOf } from 'sidecarless';
import { join, serve } from './join.js';

const mesh = await join('payments');
const port = await serve(mesh, async (req, res) => {
  res.setHeader('content-type', 'application/json');
  try {
    const r = await mesh.fetch('http://ledger:8443/entries', { method: 'POST', body: '{}' });
    const ledger = (await r.json()) as { entry: number; writer: string };
    res.end(JSON.stringify({ charged: true, caller: peerOf(req)?.spiffeId ?? null, ledger }));
  } catch (e) {
    res.statusCode = 502;
    res.end(JSON.stringify({ charged: false, error: (e as Error).message }));
  }
});
console.log(`payments listening on 127.0.0.1:${port} as ${mesh.stats().identity.spiffeId}`);
