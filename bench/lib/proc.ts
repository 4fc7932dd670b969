/** Child processes of the bench: node children with an IPC channel, and haproxy. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = join(BENCH_DIR, '..');

/** A `node --import tsx bench/<script>.ts` child answering { id, op } messages. */
export class NodeChild {
  readonly #pending = new Map<number, (v: unknown) => void>();
  #next = 1;
  ready: Promise<{ ports?: number[]; fullPort?: number; rss: number }>;
  exited = false;

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: not ready after 30 s`)), 30_000);
      proc.on('message', (m: { id?: number; reply?: unknown; ready?: boolean }) => {
        if (m.ready) {
          clearTimeout(timer);
          resolve(m as never);
          return;
        }
        const r = this.#pending.get(m.id!);
        this.#pending.delete(m.id!);
        r?.(m.reply);
      });
      proc.once('exit', (code, signal) => {
        this.exited = true;
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready`));
        for (const r of this.#pending.values()) r(Promise.reject(new Error(`${name} exited (${code ?? signal})`)));
        this.#pending.clear();
      });
    });
    this.ready.catch(() => {});
  }

  /** `profileDir`: run the child with --cpu-prof, writing its profile there when it exits. */
  static spawn(name: string, script: string, args: string[], profileDir?: string): NodeChild {
    // One directory per child: tsx's loader thread writes a profile of its own next to the main thread's.
    const prof = profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name.replace(/\W+/g, '-'))] : [];
    const proc = spawn(process.execPath, [...prof, '--import', 'tsx', join(BENCH_DIR, script), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_ENV: 'production' },
    });
    return new NodeChild(name, proc);
  }

  call<T>(op: string, extra: object = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, (v) => (v instanceof Promise ? v.then(resolve as never, reject) : resolve(v as T)));
      this.proc.send({ id, op, ...extra });
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    await Promise.race([this.call('close').catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

const CLK_TCK = 100; // Linux USER_HZ

/** CPU time (user + system) of any process, µs, from /proc (for haproxy). */
export function procCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

/** Peak and current RSS of any process, bytes, from /proc/<pid>/status. */
export function procRss(pid: number): { maxRss: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { maxRss: kb('VmHWM'), rss: kb('VmRSS') };
}
