// `sidecarless stat`: the arithmetic (rates from two scrapes, quantiles from buckets) and the CLI as a
// process against a live admin endpoint of a real mesh.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { statRows, totalsFrom } from '../../src/cli/stat.js';
import { createDevCa, createMesh, type Mesh } from '../../src/index.js';
import { parsePrometheus } from '../../src/telemetry/prometheus.js';
import { bucketQuantile } from '../../src/telemetry/stats.js';
import { CLI, ROOT } from '../e2e/process.js';
import { STACK_LINE, assertError, sidecarless } from '../e2e/cli-run.js';
import { closeServer, listen, waitFor } from '../helpers/net.js';

const quiet = { info() {}, warn() {}, error() {} };
const meshes: Mesh[] = [];
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers) await c();
  for (const m of meshes) await m.close();
});

const cli = (args: string[]) => sidecarless(args, { timeoutMs: 20_000 });

test('quantiles come from the buckets as histogram_quantile does', () => {
  const bounds = [0.1, 0.2, 0.4];
  assert.ok(Math.abs(bucketQuantile(0.5, [0, 10, 0, 0], bounds)! - 0.15) < 1e-9);
  assert.equal(bucketQuantile(0.99, [0, 0, 0, 5], bounds), 0.4, '+Inf bucket: the highest finite bound');
  assert.equal(bucketQuantile(0.5, [0, 0, 0, 0], bounds), null);
});

test('rates and success rate come from the difference of two scrapes', () => {
  const text = (ok: number, fail: number, retries: number, b: [number, number, number]) => `# TYPE sidecarless_requests_total counter
sidecarless_requests_total{direction="outbound",service="payments",peer="spiffe://td/sa/p",route="charge",status_class="2xx"} ${ok}
sidecarless_requests_total{direction="outbound",service="payments",peer="spiffe://td/sa/p",route="charge",status_class="5xx"} ${fail}
# TYPE sidecarless_request_duration_seconds histogram
sidecarless_request_duration_seconds_bucket{direction="outbound",service="payments",peer="spiffe://td/sa/p",route="charge",le="0.01"} ${b[0]}
sidecarless_request_duration_seconds_bucket{direction="outbound",service="payments",peer="spiffe://td/sa/p",route="charge",le="0.1"} ${b[1]}
sidecarless_request_duration_seconds_bucket{direction="outbound",service="payments",peer="spiffe://td/sa/p",route="charge",le="+Inf"} ${b[2]}
# TYPE sidecarless_retries_total counter
sidecarless_retries_total{service="payments",peer="spiffe://td/sa/p",route="charge",reason="503"} ${retries}
`;
  const before = totalsFrom(parsePrometheus(text(100, 0, 1, [100, 100, 100])), 0);
  const after = totalsFrom(parsePrometheus(text(190, 10, 4, [100, 200, 200])), 2_000);
  const [row] = statRows(before, after);
  assert.equal(row!.rps, 50);
  assert.equal(row!.successRate, 0.9);
  assert.equal(row!.retries, 3);
  assert.ok(row!.p50! > 0.01 && row!.p50! <= 0.1, String(row!.p50));
});

test('the CLI prints inbound and outbound tables from a live admin endpoint', { timeout: 60_000 }, async () => {
  const ca = await createDevCa();
  const payments = await createMesh({
    service: 'payments',
    identity: { ca },
    logger: quiet,
    admin: { port: 0 },
    inbound: { policy: { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }] }, audit: () => {} },
  });
  meshes.push(payments);
  const server = payments.createServer((_req, res) => res.end('ok'));
  closers.push(() => closeServer(server));
  const port = await listen(server);
  const orders = await createMesh({
    service: 'orders',
    identity: { ca },
    logger: quiet,
    admin: { port: 0 },
    outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`], routes: [{ name: 'charge', match: { path: { prefix: '/charge' } } }] } } },
  });
  meshes.push(orders);
  let stop = false;
  const load = (async () => {
    while (!stop) {
      await (await orders.fetch('http://payments/charge', { method: 'POST' })).text();
      await (await orders.fetch('http://payments/admin')).text();
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  try {
    const inbound = await cli(['stat', '--admin', `http://127.0.0.1:${payments.admin!.address().port}`, '--interval', '800ms']);
    assert.equal(inbound.code, 0, inbound.stderr);
    const lines = inbound.stdout.split('\n');
    assert.match(lines[0]!, /^INBOUND \(over 0\.\d s\)$/);
    assert.match(inbound.stdout, /FROM \(PEER\) +SERVICE +ROUTE +RPS +SUCCESS +P50 +P95 +P99 +RETRIES +DENIALS/);
    const row = lines.find((l) => l.includes('spiffe://cluster.local/ns/default/sa/orders'))!;
    const cells = row.trim().split(/\s+/);
    assert.equal(cells[1], 'payments');
    assert.equal(cells[2], '[default]');
    assert.ok(Number(cells[3]) > 0, `rps ${cells[3]}`);
    assert.equal(cells[4], '100.00%', '403s are not failures');
    assert.match(cells[5]!, /^\d+(\.\d)?ms$/);
    assert.ok(Number(cells[9]) > 0, 'denials counted');
    assert.match(inbound.stdout, /OUTBOUND \(over 0\.\d s\)\n  no requests/);

    const outbound = await cli(['stat', '--admin', `127.0.0.1:${orders.admin!.address().port}`, '--interval', '500ms']);
    assert.equal(outbound.code, 0, outbound.stderr);
    assert.match(outbound.stdout, /TO \(PEER\) +SERVICE +ROUTE/);
    assert.match(outbound.stdout, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments +payments +charge +\d+\.\d +100\.00%/);
    assert.match(outbound.stdout, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments +payments +\[default\] +\d+\.\d/);
  } finally {
    stop = true;
    await load;
  }
});

test('unreachable or wrong admin endpoint: exit 1 and why; missing --admin: usage, exit 2', async () => {
  const probe = createServer();
  const free = await listen(probe);
  await closeServer(probe);
  const r = await cli(['stat', '--admin', `http://127.0.0.1:${free}`, '--interval', '100ms']);
  assertError(r, 1, 'ERR_SIDECARLESS_SCRAPE_FAILED', new RegExp(`^sidecarless: cannot reach the admin endpoint http://127\\.0\\.0\\.1:${free}: ECONNREFUSED `), 'refused');

  // Something else on the port: a 404, then a 200 that is not Prometheus text.
  let body = 'not metrics {';
  const other = createServer((req, res) => {
    if (req.url !== '/metrics') res.statusCode = 404;
    res.end(body);
  });
  closers.push(() => closeServer(other));
  const port = await listen(other);
  const notMetrics = await cli(['stat', '--admin', `127.0.0.1:${port}`, '--interval', '100ms']);
  assertError(notMetrics, 1, 'ERR_SIDECARLESS_SCRAPE_FAILED', /\/metrics is not Prometheus text \(line 1: .*\): is http:\/\/127\.0\.0\.1:\d+ a sidecarless admin endpoint\?/, 'not prometheus');
  body = '';
  const empty = await cli(['stat', '--admin', `http://127.0.0.1:${port}/`, '--interval', '100ms']);
  assert.equal(empty.code, 0, 'an empty /metrics is an empty table, not an error');
  assert.match(empty.stdout, /INBOUND \(over 0\.\d s\)\n  no requests/);

  const u = await cli(['stat']);
  assertError(u, 2, 'ERR_SIDECARLESS_USAGE', /--admin is required/, 'no --admin');
  assert.match(u.stderr, /\nusage: sidecarless stat --admin URL/);
});

/** A long-running `sidecarless stat --watch`, its output as it comes. */
function watchStat(admin: string) {
  const proc = spawn(process.execPath, [CLI, 'stat', '--admin', admin, '--watch', '--interval', '200ms'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  proc.stdout.on('data', (d) => (out.stdout += d));
  proc.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  closers.push(async () => {
    proc.kill('SIGTERM');
    await exited;
  });
  return { proc, out, exited };
}

test('stat --watch keeps polling through an admin endpoint that goes away, says why once per try, and recovers', { timeout: 60_000 }, async () => {
  const ca = await createDevCa();
  const first = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, admin: { port: 0 } });
  const port = first.admin!.address().port;
  const admin = `http://127.0.0.1:${port}`;
  const w = watchStat(admin);
  const tables = () => (w.out.stdout.match(/^INBOUND \(over /gm) ?? []).length;
  await waitFor(() => tables() >= 2, 10_000, 'two tables while the endpoint is up');

  await first.close(); // the admin endpoint goes away
  const failures = () => w.out.stderr.split('\n').filter((l) => l.includes('scrape failed'));
  await waitFor(() => failures().length >= 3, 10_000, 'failed scrapes reported');
  assert.equal(w.proc.exitCode, null, 'still running through the outage');
  const tablesDuringOutage = tables();
  for (const l of failures()) {
    assert.match(
      l,
      new RegExp(`^sidecarless: \\S+Z scrape failed: cannot reach the admin endpoint ${admin.replace(/\./g, '\\.')}: (ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed)[^;]*; still watching, next try in 0\\.2 s \\[ERR_SIDECARLESS_SCRAPE_FAILED\\]$`),
    );
  }

  const second = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, admin: { port } }); // it comes back
  meshes.push(second);
  await waitFor(() => tables() >= tablesDuringOutage + 2, 10_000, 'tables again after the endpoint is back');
  assert.match(w.out.stdout, new RegExp(`\\S+Z  ${admin.replace(/\./g, '\\.')}  answers again; rates start from this scrape`));
  assert.equal(w.proc.exitCode, null, 'still watching');
  assert.doesNotMatch(w.out.stderr, STACK_LINE);
  assert.equal(w.out.stderr.split('\n').filter((l) => l !== '' && !l.includes('scrape failed')).length, 0, `only scrape-failed lines on stderr:\n${w.out.stderr}`);
});
