/**
 * The demo's stage: its temp directory, the control plane (in this process, its log lines shown
 * indented), the tokens it issues, and the child processes that join it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueToken } from '../../server/ca/tokens.js';
import { type RunningControlPlane, startControlPlane } from '../../server/control-plane-server.js';
import type { Io } from '../args.js';
import { type Child, startChild } from './children.js';
import { type DemoFiles, writeMeshFiles } from './mesh-files.js';
import type { CallResult } from './roles.js';

/** How long a workload that disconnected stays an endpoint: short, so the demo is quick. */
export const GRACE_MS = 1_000;

export interface Replica {
  readonly name: string;
  readonly service: string;
  readonly child: Child;
  readonly port: number;
  readonly adminPort?: number;
  readonly delayMs: number;
}

export interface Stage {
  readonly io: Io;
  readonly work: string;
  readonly files: DemoFiles;
  readonly cp: RunningControlPlane;
  readonly children: Child[];
  /** The control plane's log lines are shown while this is true. */
  showLog: boolean;
  /** What each check found: its name and whether it held. */
  readonly checks: Array<{ name: string; ok: boolean }>;
  say(line?: string): void;
  check(name: string, ok: boolean): boolean;
  /** Starts a replica of `service` that joins the control plane; resolves once it listens. */
  replica(name: string, service: string, o?: { delayMs?: number; admin?: boolean }): Promise<Replica>;
  /** Starts a replica's process now; it joins (and resolves) when the returned function is called. */
  warmReplica(name: string, service: string): Promise<() => Promise<Replica>>;
  /** Starts orders; resolves once it has joined. */
  orders(): Promise<Orders>;
  close(): Promise<void>;
}

export interface Orders {
  readonly child: Child;
  calls(n: number, o?: { concurrency?: number; path?: string; method?: string }): Promise<CallResult[]>;
  /** Calls until the returned function is called; it resolves with the results. */
  load(concurrency: number): () => Promise<CallResult[]>;
}

export async function openStage(io: Io, work: string): Promise<Stage> {
  const files = await writeMeshFiles(work);
  const stage = {} as { showLog: boolean };
  stage.showLog = true;
  // Its info lines while a scene wants them; its warnings and errors always.
  const show = (prefix: string, always = false) => (m: string) => (always || stage.showLog) && io.stdout(`    control-plane │ ${prefix}${m}`);
  const cp = await startControlPlane({ meshFile: files.mesh, state: join(work, 'state'), listen: '127.0.0.1:0', adminListen: '127.0.0.1:0', graceMs: GRACE_MS, logger: { info: show(''), warn: show('warning: ', true), error: show('error: ', true) } });
  await mkdir(join(work, 'tokens'), { recursive: true });
  const tokenFile = async (sa: string) => {
    const file = join(work, 'tokens', `${sa}.token`);
    await writeFile(file, issueToken(cp.state, { namespace: 'default', serviceAccount: sa }), { mode: 0o600 });
    return file;
  };
  const children: Child[] = [];
  const joinArgs = async (service: string) => ['--service', service, '--cp', cp.address.replace(/^127\.0\.0\.1:/, 'localhost:'), '--root', cp.rootFile, '--token', await tokenFile(service)];
  let seq = 0;
  const startReplica = async (name: string, service: string, o: { delayMs?: number; admin?: boolean; deferred?: boolean }) => {
    const child = startChild(name, 'replica', [...(await joinArgs(service)), ...(o.delayMs ? ['--delay-ms', String(o.delayMs)] : []), ...(o.admin ? ['--admin'] : []), ...(o.deferred ? ['--deferred'] : [])]);
    children.push(child);
    const loaded = o.deferred ? child.next('loaded') : Promise.resolve({});
    return async (): Promise<Replica> => {
      await loaded;
      if (o.deferred) child.send({ cmd: 'join' });
      const ev = await child.next('listening');
      return { name, service, child, port: Number(ev.port), ...(ev.adminPort !== undefined && { adminPort: Number(ev.adminPort) }), delayMs: o.delayMs ?? 0 };
    };
  };
  return Object.assign(stage, {
    io,
    work,
    files,
    cp,
    children,
    checks: [] as Array<{ name: string; ok: boolean }>,
    say: (line = '') => io.stdout(line),
    check(this: Stage, name: string, ok: boolean) {
      this.checks.push({ name, ok });
      return ok;
    },
    async replica(this: Stage, name: string, service: string, o: { delayMs?: number; admin?: boolean } = {}): Promise<Replica> {
      return (await startReplica(name, service, o))();
    },
    warmReplica: (name: string, service: string) => startReplica(name, service, { deferred: true }),
    async orders(): Promise<Orders> {
      const child = startChild('orders', 'orders', await joinArgs('orders'));
      children.push(child);
      await child.next('ready');
      return {
        child,
        async calls(n: number, o: { concurrency?: number; path?: string; method?: string } = {}) {
          const id = ++seq;
          child.send({ cmd: 'calls', id, n, ...o });
          for (;;) {
            const ev = await child.next('calls');
            if (ev.id === id) return ev.results as CallResult[];
          }
        },
        load(concurrency: number) {
          child.send({ cmd: 'load', concurrency });
          const done = child.next('load');
          return async () => {
            child.send({ cmd: 'stop' });
            return (await done).results as CallResult[];
          };
        },
      };
    },
    async close() {
      await Promise.all(children.map((c) => c.stop()));
      stage.showLog = false;
      await cp.close();
    },
  }) as Stage;
}

/** Calls per replica, in first-seen order. */
export function spread(results: readonly CallResult[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of results) if (r.status === 200 && r.replica) m.set(r.replica, (m.get(r.replica) ?? 0) + 1);
  return m;
}
