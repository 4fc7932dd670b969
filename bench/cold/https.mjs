// Cold start baseline for issue 14: a bare Node process that makes one mutual-TLS request with
// node:https (the orders SVID as client certificate) to the same server the mesh calls, then exits.
//   node bench/cold/https.mjs <port> <svidDir>
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [port, dir] = process.argv.slice(2);
const read = (f) => readFileSync(join(dir, f));
const opts = { host: '127.0.0.1', port: Number(port), path: '/api/orders/42', cert: read('svid.pem'), key: read('svid_key.pem'), ca: read('svid_bundle.pem'), checkServerIdentity: () => undefined, agent: false };
request(opts, (res) => {
  res.resume();
  res.on('end', () => {
    const firstResponse = performance.now();
    const cpu = process.cpuUsage();
    process.stdout.write(JSON.stringify({ status: res.statusCode, firstResponse, cpuMs: (cpu.user + cpu.system) / 1000, maxRss: process.resourceUsage().maxRSS * 1024 }) + '\n');
  });
}).end();
