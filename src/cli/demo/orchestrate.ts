/**
 * `sidecarless demo` without a role: the control plane in this process, the workloads as child
 * processes that join it, the scenes in order, the traffic table of one replica, the control
 * plane's status, a summary; exit 0 when every scene held.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Io } from '../args.js';
import { fetchStatus, renderStatus } from '../control-plane-status.js';
import { type Snapshot, renderStat, scrapeAdmin, statRows } from '../stat.js';
import { sceneIntruder } from './intruder.js';
import { sceneCalls, sceneJoin, sceneJoinLeave, scenePolicy, sceneSplit } from './scenes.js';
import { type Stage, openStage } from './stage.js';

const GIVE_UP_MS = 60_000;

export async function orchestrate(io: Io): Promise<number> {
  const started = Date.now();
  const guard = setTimeout(() => {
    io.stderr(`demo: still running after ${GIVE_UP_MS / 1000} s, giving up`);
    process.exit(1);
  }, GIVE_UP_MS);
  guard.unref();
  const work = await mkdtemp(join(tmpdir(), 'sidecarless-demo-'));
  let stage: Stage | undefined;
  try {
    io.stdout('sidecarless demo: a small mesh on its own control plane, live\n');
    io.stdout(`  sidecarless control-plane --config ${join(work, 'mesh.yaml')} --grace 1s   (in this process; its log:)`);
    stage = await openStage(io, work);
    await play(stage);
    const failed = stage.checks.filter((c) => !c.ok).map((c) => c.name);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    io.stdout(
      `\nSummary: ${stage.checks.length - failed.length}/${stage.checks.length} scenes behaved as they should` +
        (failed.length ? ` (NOT: ${failed.join(', ')})` : ': services joined the control plane and found each other by name, over mutual TLS; a replica joined and left with no failed call; a 90/10 split and a policy change followed live; an intruder refused') +
        `; ${seconds} s.`,
    );
    return failed.length === 0 ? 0 : 1;
  } catch (e) {
    io.stderr(`demo: ${(e as Error).message}`);
    return 1;
  } finally {
    await stage?.close();
    await rm(work, { recursive: true, force: true });
    clearTimeout(guard);
  }
}

async function play(s: Stage): Promise<void> {
  const ordersP = s.orders();
  const { replicas } = await sceneJoin(s);
  const p1 = replicas[0]!;
  const admin = `http://127.0.0.1:${p1.adminPort}`;
  const statBefore: Snapshot = await scrapeAdmin(admin);
  const orders = await ordersP;
  const p4 = s.warmReplica('payments-4', 'payments'); // its process starts now, it joins in its scene
  await sceneCalls(s, orders);
  await sceneJoinLeave(s, orders, await p4);
  await sceneSplit(s, orders);
  await scenePolicy(s, orders);
  await sceneIntruder(s, p1);
  const statAfter = await scrapeAdmin(admin);
  s.say(`\n  sidecarless stat --admin ${admin}   (payments-1, over the calls above)\n`);
  s.say(renderStat(statRows(statBefore, statAfter), (statAfter.at - statBefore.at) / 1000).replace(/^(?=.)/gm, '  '));
  s.say(`\n  sidecarless control-plane status --admin ${s.cp.adminUrl}\n`);
  s.say(renderStatus(await fetchStatus(s.cp.adminUrl)).replace(/^(?=.)/gm, '  '));
}
