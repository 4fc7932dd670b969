/**
 * One replica of `payments` for `npm run chaos` (reliability/chaos.ts): its SVID from the embedded
 * control plane's CA, registered there, its policy from a watched file. argv: control-plane
 * address, pinned root, token file, policy file, name. Prints `ready <port>`; SIGTERM closes it.
 * Any unhandled rejection or uncaught exception is printed as `UNHANDLED …` (the chaos run counts them).
 */
import { createMesh } from '../src/index.js';

const [address, root, token, policy, name] = process.argv.slice(2) as [string, string, string, string, string];
process.on('unhandledRejection', (e) => console.error(`UNHANDLED rejection in ${name}: ${(e as Error)?.stack ?? e}`));
process.on('uncaughtException', (e) => console.error(`UNHANDLED exception in ${name}: ${e.stack}`));
const mesh = await createMesh({
  service: 'payments',
  controlPlane: { address, root, token: { file: token } },
  inbound: { policy },
  logger: { info() {}, warn: (m) => console.error(`${name} warn: ${m}`), error: (m) => console.error(`${name} error: ${m}`) },
});
const server = mesh.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.end(name));
});
server.listen(0, '127.0.0.1', () => console.log(`ready ${(server.address() as { port: number }).port}`));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
  void mesh.close().then(() => process.exit(0));
});
