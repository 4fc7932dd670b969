// Cold start baseline: a bare Node process that makes one server-authenticated TLS request
// (node:https, P-256 chain) and exits. Prints its own timings (ms since process start) as JSON.
import { request } from 'node:https';
import { readFileSync } from 'node:fs';

const [port, caFile] = process.argv.slice(2);
const req = request({ host: '127.0.0.1', port: Number(port), path: '/api/orders/42', ca: readFileSync(caFile), agent: false }, (res) => {
  res.resume();
  res.on('end', () => {
    const firstResponse = performance.now();
    process.stdout.write(JSON.stringify({ status: res.statusCode, firstResponse, maxRss: process.resourceUsage().maxRSS * 1024 }) + '\n');
  });
});
req.end();
