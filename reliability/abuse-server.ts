/**
 * The server of `npm run abuse` (reliability/abuse.ts starts it): one mesh, `payments`, on a dev
 * CA (argv: its directory), serving GET /work and POST /upload (reads the whole body) behind the
 * default policy. Prints `ready <port>`; answers { op: 'rss' } with its RSS and open descriptors.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DevCa } from '../src/identity/dev-ca.js';
import { createMesh } from '../src/index.js';

const [caDir] = process.argv.slice(2) as [string];
const ca = await DevCa.fromPem(readFileSync(join(caDir, 'ca.pem'), 'utf8'), readFileSync(join(caDir, 'ca_key.pem'), 'utf8'));
const mesh = await createMesh({ service: 'payments', identity: { ca }, logger: { info() {}, warn() {}, error: (m) => console.error(`server error: ${m}`) } });
const server = mesh.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.end('ok'));
});
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }));
let peak = 0;
setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100).unref();
process.on('message', (m: { op: string; id: number }) => {
  if (m.op === 'rss') {
    const rss = process.memoryUsage().rss;
    process.send!({ id: m.id, rss, peak: Math.max(peak, rss), fds: readdirSync('/proc/self/fd').length });
    peak = 0;
  }
  if (m.op === 'stop') {
    server.closeAllConnections();
    server.close();
    void mesh.close().then(() => process.exit(0));
  }
});
