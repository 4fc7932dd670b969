/**
 * The demo's scenes, in order, each narrating what it shows and recording whether it held.
 * Counts are judged with tolerances (a loaded CI machine moves them), never exactly.
 */
import type { DemoEvent } from './children.js';
import { writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { idOf, meshFile, paymentsPolicy } from './mesh-files.js';
import type { CallResult } from './roles.js';
import { GRACE_MS, type Orders, type Replica, type Stage, spread } from './stage.js';
import { ackedBy, registered, tookChange, until } from './watch.js';

const pad = (s: string, n: number) => s.padEnd(n);
const failedOf = (rs: readonly CallResult[]) => rs.filter((r) => r.status !== 200).length;
const shares = (m: Map<string, number>) => [...m].map(([k, n]) => `${k} ${n}`).join(', ');

/** One call, and the audit record a replica wrote for it (empty when none came within 3 s). */
async function auditedCall(s: Stage, orders: Orders, path: string): Promise<{ result: CallResult; audit: DemoEvent }> {
  const replicas = s.children.filter((c) => c.name.startsWith('payments') && c.proc.exitCode === null);
  const marks = replicas.map((c) => c.mark());
  const audited = Promise.race(replicas.map((c, i) => c.seen('audit', marks[i]!)));
  const [result] = await orders.calls(1, { path });
  let timer: NodeJS.Timeout | undefined;
  const none = new Promise<DemoEvent>((r) => (timer = setTimeout(() => r({}), result!.status === 403 ? 3_000 : 0)));
  const audit = await Promise.race([audited, none]);
  clearTimeout(timer);
  return { result: result!, audit };
}

/** Three payments replicas (one slow) and payments-v2 join; the control plane registers each. */
export async function sceneJoin(s: Stage): Promise<{ replicas: Replica[]; v2: Replica }> {
  const started = Date.now();
  const [replicas, v2] = await Promise.all([
    Promise.all([s.replica('payments-1', 'payments', { admin: true }), s.replica('payments-2', 'payments'), s.replica('payments-3', 'payments', { delayMs: 150 })]),
    s.replica('payments-v2-1', 'payments-v2'),
  ]);
  await until('every replica registered', () => registered(s.cp, 'payments').length === 3 && registered(s.cp, 'payments-v2').length === 1);
  s.showLog = false;
  s.say(`\n  workloads join with a token, get their SVID from the control plane's CA and register (${Date.now() - started} ms, no endpoint configured anywhere):`);
  for (const r of [...replicas, v2]) {
    s.say(`  ${pad(r.name, 14)} registered 127.0.0.1:${r.port} as an endpoint of ${pad(r.service, 11)} ${idOf(r.service)}  (pid ${r.child.proc.pid})${r.delayMs ? `  slow: +${r.delayMs} ms` : ''}`);
  }
  s.check('replicas registered', true);
  return { replicas, v2 };
}

/** orders finds payments by name; every call mTLS both ways; /admin denied; the slow replica drained. */
export async function sceneCalls(s: Stage, orders: Orders): Promise<void> {
  s.say(`  ${pad('orders', 14)} joined: mesh.fetch('http://payments:8443/charge') resolves payments.default.svc.cluster.local:8443 over xDS  (pid ${orders.child.proc.pid})\n`);
  const first = await orders.calls(6);
  for (const r of first) {
    s.say(r.status === 200 ? `  orders → ${pad(r.replica!, 11)} 200  server proved ${idOf('payments')}; it saw the caller as ${r.caller}` : `  orders → payments    FAILED  ${r.error ?? r.status}`);
  }
  s.check('calls over mTLS', failedOf(first) === 0 && first.every((r) => r.caller === idOf('orders')));
  const { result: admin, audit } = await auditedCall(s, orders, '/admin/refund');
  s.say(`  orders → payments    POST /admin/refund  ${admin.status ?? admin.error}  ${admin.status === 403 ? `denied before the app ran (audit: rule ${audit.rule} of the ${audit.layer} policy, ${audit.method} ${audit.path} from ${audit.peer})` : 'SHOULD HAVE BEEN DENIED'}`);
  s.check('admin denied', admin.status === 403 && audit.rule === 'nobody-reaches-admin');
  const load = await orders.calls(60, { concurrency: 6 });
  const m = spread(load);
  s.say(`  orders → payments    60 more calls, 6 at a time: ${shares(m)} — the slow replica's traffic drained (p2c-ewma)`);
  s.check('calls under load', failedOf(load) === 0 && (m.get('payments-3') ?? 0) < 20);
}

/** payments-4 joins (calls reach it), then leaves: it drains, no call fails. */
export async function sceneJoinLeave(s: Stage, orders: Orders, join: () => Promise<Replica>): Promise<void> {
  const p4 = await join();
  const joinedMs = await until('payments-4 registered', () => registered(s.cp, 'payments').includes(`127.0.0.1:${p4.port}`));
  const reach = await orders.calls(60, { concurrency: 4 });
  const n4 = spread(reach).get('payments-4') ?? 0;
  s.say(`\n  payments-4 joins   registered 127.0.0.1:${p4.port} ${joinedMs} ms after it listened; of the next 60 calls it served ${n4}`);
  s.check('a joining replica serves', n4 > 0 && failedOf(reach) === 0);
  const stop = orders.load(3);
  const before = ackedBy(s.cp, ['orders.default']);
  const leftAt = Date.now();
  p4.child.send({ cmd: 'leave' });
  await p4.child.next('left');
  await until('payments-4 removed', () => !registered(s.cp, 'payments').includes(`127.0.0.1:${p4.port}`), GRACE_MS + 5_000);
  const removedMs = Date.now() - leftAt;
  await until('orders took the new endpoints', () => tookChange(s.cp, ['orders.default'], before));
  await p4.child.stop();
  await new Promise((r) => setTimeout(r, 100));
  const during = await stop();
  s.say(`  payments-4 leaves  it stops accepting, finishes its open connections (connection: close), closes its stream; the control plane`);
  s.say(`                     keeps it ${GRACE_MS / 1000} s (the grace: a new connection to it is refused, a connect failure retried elsewhere), removes it`);
  s.say(`                     ${removedMs} ms after it left and pushes the endpoints to orders: ${during.length} calls meanwhile, ${failedOf(during)} failed`);
  for (const r of during.filter((r) => r.status !== 200).slice(0, 3)) s.say(`    failed: ${r.status ?? ''} ${r.error ?? r.body ?? ''}`);
  s.check('a leaving replica drains', failedOf(during) === 0 && during.length > 0);
}

/** The mesh file edited: payments split 90/10 to payments-v2, followed live. */
export async function sceneSplit(s: Stage, orders: Orders): Promise<void> {
  const before = ackedBy(s.cp, ['orders.default']);
  s.say(`\n  edit ${relative(s.work, s.files.mesh)}: payments split: [{ service: payments, weight: 90 }, { service: payments-v2, weight: 10 }]`);
  s.showLog = true;
  const edited = Date.now();
  await writeFile(s.files.mesh, meshFile({ v1: 90, v2: 10 }));
  await until('orders took the split', () => tookChange(s.cp, ['orders.default'], before));
  const ms = Date.now() - edited;
  s.showLog = false;
  const calls = await orders.calls(200, { concurrency: 8 });
  const v2 = spread(calls).get('payments-v2-1') ?? 0;
  s.say(`  orders ACKed the new routes ${ms} ms after the edit; of the next 200 calls payments-v2 served ${v2} (${(v2 / 2).toFixed(1)} %), payments ${200 - v2 - failedOf(calls)}, ${failedOf(calls)} failed`);
  s.check('the split followed', failedOf(calls) === 0 && v2 >= 4 && v2 <= 40);
}

/** The policy file edited: the next charge is denied before the app runs. */
export async function scenePolicy(s: Stage, orders: Orders): Promise<void> {
  const clusters = ['payments.default', 'payments-v2.default'];
  const before = ackedBy(s.cp, clusters);
  s.say(`\n  edit ${relative(s.work, s.files.policy)}: + charges-frozen: deny /charge, + watch-charges: audit /charge`);
  s.showLog = true;
  await writeFile(s.files.policy, paymentsPolicy(true));
  const edited = Date.now();
  await until('the replicas took the policy', () => tookChange(s.cp, clusters, before));
  const ms = Date.now() - edited;
  s.showLog = false;
  const { result: next, audit } = await auditedCall(s, orders, '/charge');
  s.say(`  every replica ACKed its new inbound Listener (RBAC) ${ms} ms after the edit; the next POST /charge: ${next.status ?? next.error}${next.status === 403 ? ` — denied before the app ran (audit: rule ${audit.rule} of the ${audit.layer} policy)` : ' SHOULD HAVE BEEN DENIED'}`);
  s.check('the policy change denied the next request', next.status === 403 && audit.rule === 'charges-frozen');
}
