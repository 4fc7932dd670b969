// ledger: keeps entries; only payments may write (policies/ledger.yaml).
import { peerOf } from 'sidecarless';
import { join, serve } from './join.js';

const mesh = await join('ledger');
let entries = 0;
const port = await serve(mesh, (req, res) => {
  entries++;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ entry: entries, writer: peerOf(req)?.spiffeId ?? null }));
});
console.log(`ledger listening on 127.0.0.1:${port} as ${mesh.stats().identity.spiffeId}`);
