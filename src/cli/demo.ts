import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createDevCa, type DevCa } from '../identity/dev-ca.js';
import { peerOf } from '../inbound/peer-of.js';
import { createMesh } from '../mesh.js';
import { BUNDLE_FILE, KEY_FILE, SVID_FILE } from '../sources/dir.js';
import { type Io, defineCommand } from './args.js';
import { type Snapshot, renderStat, scrapeAdmin, statRows } from './stat.js';

/**
 * `sidecarless demo`: the main job, live. A dev CA; two `payments` replicas and an `orders` client
 * as separate processes talking mTLS; an intruder from another trust domain that is refused.
 * Prints who called whom with which verified identity, and exits by itself with a summary.
 * The hidden options run one demo process (a role); the orchestrator passes them.
 */
export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'a small mesh, live: mTLS, policy, load balancing and an intruder refused',
  description:
    'Starts a dev CA, three payments replicas (one slow) and an orders client as separate processes\n' +
    'talking mutual TLS, shows the policy denying a call and an intruder from another trust domain\n' +
    'refused during the handshake, prints the traffic table of one replica, and exits with a summary.',
  options: {
    role: { type: 'string', hidden: true, help: 'internal' },
    name: { type: 'string', hidden: true, help: 'internal' },
    dir: { type: 'string', hidden: true, help: 'internal' },
    endpoints: { type: 'string', hidden: true, help: 'internal' },
    calls: { type: 'string', hidden: true, help: 'internal' },
    target: { type: 'string', hidden: true, help: 'internal' },
    'delay-ms': { type: 'string', hidden: true, help: 'internal' },
    load: { type: 'string', hidden: true, help: 'internal' },
    admin: { type: 'boolean', hidden: true, help: 'internal' },
  },
  exits: '0 every step behaved as it should, 1 a step did not, 2 usage error',
  run(v, io) {
    if (v.role) return runRole(v.role, v as Record<string, string | undefined>, v.admin === true);
    return orchestrate(io);
  },
});

const TD = 'cluster.local';
const PAYMENTS_ID = `spiffe://${TD}/ns/default/sa/payments`;
const ORDERS_ID = `spiffe://${TD}/ns/default/sa/orders`;
const INTRUDER_ID = 'spiffe://evil.example/ns/default/sa/orders';
/** How late the slow payments replica answers. */
const SLOW_MS = 150;

/** What the payments replicas enforce: written once, outside the app code. */
export const DEMO_POLICY = `rules:
  - name: orders-may-charge
    action: allow
    from: { identities: ["${ORDERS_ID}"] }
    to: { methods: ["POST"], paths: ["/charge"] }
  - name: nobody-reaches-admin
    action: deny
    to: { paths: ["/admin", "/admin/*"] }
  - name: watch-admin
    action: audit
    to: { paths: ["/admin", "/admin/*"] }
`;

async function writeIdentity(ca: DevCa, spiffeId: string, dir: string, extraBundle = ''): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  const svid = await ca.issue({ spiffeId });
  await writeFile(join(dir, SVID_FILE), svid.certChainPem);
  await writeFile(join(dir, KEY_FILE), svid.keyPem, { mode: 0o600 });
  await writeFile(join(dir, BUNDLE_FILE), svid.bundlePem + extraBundle);
}

interface Child {
  proc: ChildProcess;
  events: AsyncIterator<Record<string, unknown>>;
}

function start(role: string, extra: string[]): Child {
  const proc = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'demo', '--role', role, ...extra], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, SIDECARLESS_DEMO_CHILD: '1' },
  });
  const lines = createInterface({ input: proc.stdout! });
  async function* events() {
    for await (const line of lines) {
      try {
        yield JSON.parse(line) as Record<string, unknown>;
      } catch {
        // not an event line
      }
    }
  }
  return { proc, events: events() };
}

async function next(child: Child, event: string): Promise<Record<string, unknown>> {
  for (;;) {
    const r = await child.events.next();
    if (r.done) throw new Error(`a demo process ended before "${event}"`);
    if (r.value.event === event) return r.value;
  }
}

async function orchestrate(io: Io): Promise<number> {
  const started = Date.now();
  const guard = setTimeout(() => {
    io.stderr('demo: still running after 60 s, giving up');
    process.exit(1);
  }, 60_000);
  guard.unref();
  const work = await mkdtemp(join(tmpdir(), 'sidecarless-demo-'));
  const children: Child[] = [];
  try {
    const ca = await createDevCa({ trustDomain: TD });
    const evilCa = await createDevCa({ trustDomain: 'evil.example' });
    await writeIdentity(ca, PAYMENTS_ID, join(work, 'payments'));
    await writeIdentity(ca, ORDERS_ID, join(work, 'orders'));
    // The intruder knows our public bundle (bundles are public), but its certificate comes from another CA.
    await writeIdentity(evilCa, INTRUDER_ID, join(work, 'intruder'), ca.bundlePem);

    io.stdout('sidecarless demo: a small mesh, live\n');
    io.stdout(`  dev CA        spiffe://${TD}  (SVIDs in ${work})`);
    const replicas: Array<{ name: string; port: number }> = [];
    let statAdmin: string | undefined;
    let statBefore: Snapshot | undefined;
    // payments-3 answers 150 ms late: the balancer (p2c over peak-EWMA) drains its traffic.
    for (const [name, delayMs] of [['payments-1', 0], ['payments-2', 0], ['payments-3', SLOW_MS]] as const) {
      // payments-1 also serves the admin endpoint: `sidecarless stat` reads it at the end.
      const c = start('payments', ['--name', name, '--dir', join(work, 'payments'), ...(delayMs ? ['--delay-ms', String(delayMs)] : []), ...(name === 'payments-1' ? ['--admin'] : [])]);
      children.push(c);
      const ev = await next(c, 'listening');
      if (ev.adminPort !== undefined) {
        statAdmin = `http://127.0.0.1:${ev.adminPort}`;
        statBefore = await scrapeAdmin(statAdmin);
      }
      replicas.push({ name, port: Number(ev.port) });
      io.stdout(`  ${name.padEnd(12)}  https://127.0.0.1:${ev.port}  ${PAYMENTS_ID}  (pid ${c.proc.pid})${delayMs ? `  slow: +${delayMs} ms` : ''}`);
    }
    const endpoints = replicas.map((r) => `127.0.0.1:${r.port}`).join(',');
    const calls = 8;
    const loadCalls = 60;
    const orders = start('orders', ['--dir', join(work, 'orders'), '--endpoints', endpoints, '--calls', String(calls), '--load', String(loadCalls)]);
    children.push(orders);
    io.stdout(`  orders        mesh.fetch('http://payments/charge')  ${ORDERS_ID}  (pid ${orders.proc.pid})`);
    io.stdout('  policy        payments: allow orders POST /charge; deny /admin to everyone; audit /admin\n');

    const perReplica = new Map<string, number>();
    let ok = 0;
    for (let i = 0; i < calls; i++) {
      const ev = await next(orders, 'call');
      if (ev.status === 200) {
        ok++;
        perReplica.set(String(ev.replica), (perReplica.get(String(ev.replica)) ?? 0) + 1);
        io.stdout(`  orders → ${String(ev.replica).padEnd(10)} 200  server proved ${PAYMENTS_ID}; it saw the caller as ${ev.callerSeen}`);
      } else {
        io.stdout(`  orders → payments   FAILED  ${ev.error ?? ev.status}`);
      }
    }

    const denied = await next(orders, 'call');
    const audit = await Promise.race(children.slice(0, replicas.length).map((c) => next(c, 'audit')));
    const deniedOk = denied.status === 403;
    io.stdout(
      `  orders → payments   POST /admin/refund  ${denied.status ?? denied.error}  ` +
        (deniedOk ? `denied before the app ran (audit: rule ${audit.rule}, ${audit.method} ${audit.path} from ${audit.peer})` : 'SHOULD HAVE BEEN DENIED'),
    );

    const load = await next(orders, 'load');
    const counts = load.counts as Record<string, number>;
    const slowShare = counts['payments-3'] ?? 0;
    const loadOk = load.ok === loadCalls;
    io.stdout(
      `  orders → payments   ${loadCalls} more calls, 6 at a time: ` +
        replicas.map((r) => `${r.name}${r.name === 'payments-3' ? ' (slow)' : ''} ${counts[r.name] ?? 0}`).join(', ') +
        ` — the slow replica's traffic drained (p2c-ewma)`,
    );

    const intruder = start('intruder', ['--dir', join(work, 'intruder'), '--target', `127.0.0.1:${replicas[0]!.port}`]);
    children.push(intruder);
    const attempt = await next(intruder, 'attempt');
    const refused = attempt.status === undefined;
    io.stdout(
      refused
        ? `  intruder (${INTRUDER_ID}) → payments-1   refused during the TLS handshake: its certificate comes from a CA payments does not trust (client saw: ${attempt.error})`
        : `  intruder → payments-1   GOT ${attempt.status}: THIS SHOULD NOT HAPPEN`,
    );

    if (statAdmin) {
      const statAfter = await scrapeAdmin(statAdmin);
      io.stdout(`\n  sidecarless stat --admin ${statAdmin}   (payments-1, over the calls above)\n`);
      io.stdout(renderStat(statRows(statBefore, statAfter), (statAfter.at - statBefore!.at) / 1000).replace(/^(?=.)/gm, '  '));
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const spread = [...perReplica].map(([k, n]) => `${k}: ${n}`).join(', ');
    io.stdout(
      `\nSummary: ${ok}/${calls} calls from orders succeeded over mutual TLS (${spread}); ` +
        `1 call denied by policy; ${load.ok}/${loadCalls} calls under load, ${slowShare} to the slow replica; ` +
        `${refused ? '1/1' : '0/1'} intruder connection refused; ${seconds} s.`,
    );
    return ok === calls && deniedOk && loadOk && refused ? 0 : 1;
  } finally {
    for (const c of children) c.proc.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.proc.exitCode !== null ? undefined : new Promise((r) => c.proc.once('exit', r)))));
    await rm(work, { recursive: true, force: true });
    clearTimeout(guard);
  }
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

async function runRole(role: string, v: Record<string, string | undefined>, admin = false): Promise<number> {
  // A demo child ends when its parent does.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  const quiet = { info() {}, warn() {}, error() {} };
  if (role === 'payments') {
    const mesh = await createMesh({
      service: 'payments',
      identity: { dir: v.dir! },
      logger: quiet,
      inbound: { policy: DEMO_POLICY, audit: (record) => emit({ event: 'audit', ...record }) },
      ...(admin && { admin: { port: 0 } }),
    });
    const delayMs = Number(v['delay-ms'] ?? 0);
    const server = mesh.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      const body = JSON.stringify({ replica: v.name, caller: peerOf(req)?.spiffeId ?? null });
      if (delayMs > 0) setTimeout(() => res.end(body), delayMs);
      else res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    emit({ event: 'listening', port: (server.address() as { port: number }).port, ...(mesh.admin && { adminPort: mesh.admin.address().port }) });
    await new Promise(() => {});
  }
  if (role === 'orders' || role === 'intruder') {
    const endpoints = role === 'orders' ? v.endpoints!.split(',') : [v.target!];
    const mesh = await createMesh({
      service: 'orders',
      ...(role === 'intruder' && { trustDomain: 'evil.example' }),
      identity: { dir: v.dir! },
      logger: quiet,
      outbound: { services: { payments: { endpoints, identity: PAYMENTS_ID } } },
    });
    const calls = role === 'orders' ? Number(v.calls ?? 8) : 1;
    for (let i = 0; i < calls; i++) {
      try {
        const res = await mesh.fetch('http://payments/charge', { method: 'POST', body: JSON.stringify({ amount: 10 + i }) });
        const body = (await res.json()) as { replica: string; caller: string };
        emit({ event: role === 'orders' ? 'call' : 'attempt', status: res.status, replica: body.replica, callerSeen: body.caller });
      } catch (e) {
        const err = e as Error & { cause?: Error & { code?: string } };
        emit({ event: role === 'orders' ? 'call' : 'attempt', error: err.cause?.message ?? err.message, code: err.cause?.code });
      }
    }
    if (role === 'orders') {
      const res = await mesh.fetch('http://payments/admin/refund', { method: 'POST', body: '{}' });
      emit({ event: 'call', status: res.status, body: await res.text() });
      const total = Number(v.load ?? 0);
      if (total > 0) {
        const counts: Record<string, number> = {};
        let ok = 0;
        let sent = 0;
        const worker = async () => {
          while (sent < total) {
            sent++;
            try {
              const r = await mesh.fetch('http://payments/charge', { method: 'POST', body: '{"amount":1}' });
              const b = (await r.json()) as { replica: string };
              if (r.status === 200) ok++;
              counts[b.replica] = (counts[b.replica] ?? 0) + 1;
            } catch {
              // counted as not ok
            }
          }
        };
        await Promise.all(Array.from({ length: 6 }, worker));
        emit({ event: 'load', ok, counts });
      }
    }
    await mesh.close();
    return 0;
  }
  throw new Error(`unknown demo role ${role}`);
}

