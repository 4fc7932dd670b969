/**
 * The demo's scenes, in order, each narrating what it shows and recording whether it held.
 * Counts are judged with tolerances (a loaded CI machine moves them), never exactly.
 */
import { writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { idOf, meshFile, paymentsPolicy } from './mesh-files.js';
import type { CallResult } from './roles.js';
import { GRACE_MS, type Orders, type Replica, type Stage, spread } from './stage.js';
import { ackedBy, registered, tookChange, until } from './watch.js';

const pad = (s: string, n: number) => s.padEnd(n);
const failedOf = (rs: readonly CallResult[]) => rs.filter((r) => r.status !== 200).length;
const shares = (m: Map<string, number>) => [...m].map(([k, n]) => `${k} ${n}`).join(', ');

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
  const [admin] = await orders.calls(1, { path: '/admin/refund' });
  s.say(`  orders → payments    POST /admin/refund  ${admin!.status ?? admin!.error}  ${admin!.status === 403 ? 'denied by the inbound policy the control plane sent (rule nobody-reaches-admin), before the app ran' : 'SHOULD HAVE BEEN DENIED'}`);
  s.check('admin denied', admin!.status === 403);
  const load = await orders.calls(60, { concurrency: 6 });
  const m = spread(load);
  s.say(`  orders → payments    60 more calls, 6 at a time: ${shares(m)} — the slow replica's traffic drained (p2c-ewma)`);
  s.check('calls under load', failedOf(load) === 0 && (m.get('payments-3') ?? 0) < 20);
}

/** payments-4 joins (calls reach it), then leaves: it drains, no call fails. */
export async function sceneJoinLeave(s: Stage, orders: Orders): Promise<void> {
  const p4 = await s.replica('payments-4', 'payments');
  const joinedMs = await until('payments-4 registered', () => registered(s.cp, 'payments').includes(`127.0.0.1:${p4.port}`));
  const reach = await orders.calls(40, { concurrency: 4 });
  const n4 = spread(reach).get('payments-4') ?? 0;
  s.say(`\n  payments-4 joins   registered 127.0.0.1:${p4.port} ${joinedMs} ms after it listened; of the next 40 calls it served ${n4}`);
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
  s.say(`  payments-4 leaves  its stream closes; it stays an endpoint for the ${GRACE_MS / 1000} s grace while it drains, removed after ${removedMs} ms, then exits: ${during.length} calls meanwhile, ${failedOf(during)} failed`);
  for (const r of during.filter((r) => r.status !== 200).slice(0, 3)) s.say(`    failed: ${r.status ?? ''} ${r.error ?? r.body ?? ''}`);
  s.check('a leaving replica drains', failedOf(during) === 0 && during.length > 0);
}

/** The mesh file edited: payments split 90/10 to payments-v2, followed live. */
export async function sceneSplit(s: Stage, orders: Orders): Promise<void> {
  const before = ackedBy(s.cp, ['orders.default']);
  const edited = Date.now();
  s.say(`\n  edit ${relative(s.work, s.files.mesh)}: payments split: [{ service: payments, weight: 90 }, { service: payments-v2, weight: 10 }]`);
  s.showLog = true;
  await writeFile(s.files.mesh, meshFile({ v1: 90, v2: 10 }));
  const ms = await until('orders took the split', () => tookChange(s.cp, ['orders.default'], before));
  s.showLog = false;
  const calls = await orders.calls(200, { concurrency: 8 });
  const v2 = spread(calls).get('payments-v2-1') ?? 0;
  s.say(`  pushed to orders and ACKed ${Date.now() - edited - 0} ms after the edit (${ms} ms waiting); over the next 200 calls payments-v2 served ${v2} (${((v2 / 2) | 0)} %), payments ${200 - v2 - failedOf(calls)}, ${failedOf(calls)} failed`);
  s.check('the split followed', failedOf(calls) === 0 && v2 >= 4 && v2 <= 40);
}

/** The policy file edited: the next charge is denied before the app runs. */
export async function scenePolicy(s: Stage, orders: Orders): Promise<void> {
  const clusters = ['payments.default', 'payments-v2.default'];
  const before = ackedBy(s.cp, clusters);
  s.say(`\n  edit ${relative(s.work, s.files.policy)}: + { name: charges-frozen, action: deny, to: { paths: ["/charge"] } }`);
  s.showLog = true;
  await writeFile(s.files.policy, paymentsPolicy(true));
  const ms = await until('the replicas took the policy', () => tookChange(s.cp, clusters, before));
  s.showLog = false;
  const [next] = await orders.calls(1);
  s.say(`  every replica ACKed its new inbound Listener (RBAC) ${ms} ms after the edit; the next POST /charge: ${next!.status ?? next!.error}${next!.status === 403 ? ' — denied before the app ran' : ' SHOULD HAVE BEEN DENIED'}`);
  s.check('the policy change denied the next request', next!.status === 403);
}
