// Cold start baseline for issue 14: a new process that makes one mutual-TLS request with npm undici's
// fetch and an Agent presenting the client certificate (the orders SVID), to the same server the
// mesh calls, then exits. Prints its own timings (ms since process start) and CPU as JSON.
//   node bench/cold/undici.mjs <port> <svidDir>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [port, dir] = process.argv.slice(2);
const { fetch, Agent } = await import('undici');
const imported = performance.now();
const read = (f) => readFileSync(join(dir, f));
const agent = new Agent({ connect: { cert: read('svid.pem'), key: read('svid_key.pem'), ca: read('svid_bundle.pem'), servername: 'localhost', checkServerIdentity: () => undefined } });
const meshReady = performance.now();
const res = await fetch(`https://127.0.0.1:${port}/api/orders/42`, { dispatcher: agent });
await res.arrayBuffer();
const firstResponse = performance.now();
await agent.close();
const cpu = process.cpuUsage();
process.stdout.write(JSON.stringify({ status: res.status, imported, meshReady, firstResponse, cpuMs: (cpu.user + cpu.system) / 1000, maxRss: process.resourceUsage().maxRSS * 1024 }) + '\n');
