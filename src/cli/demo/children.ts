/**
 * The demo's child processes: `sidecarless demo --role …` spawned from the orchestrator, each
 * speaking JSON lines (events on stdout, commands on stdin). A child ends when its stdin does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export type DemoEvent = Record<string, unknown> & { event?: string };

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Sends one command (a JSON line on the child's stdin). */
  send(command: Record<string, unknown>): void;
  /** The next event named `event` that next() has not returned yet (one call at a time per name). */
  next(event: string): Promise<DemoEvent>;
  /** How many events came so far: a mark for seen(). */
  mark(): number;
  /** The first event named `event` that came after `mark`; takes nothing from next(). */
  seen(event: string, mark: number): Promise<DemoEvent>;
  /** Ends the child (closes its stdin, then SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

export function startChild(name: string, role: string, args: string[]): Child {
  const proc = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'demo', '--role', role, '--name', name, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, SIDECARLESS_DEMO_CHILD: '1' },
  });
  proc.stdin!.on('error', () => {});
  const log: DemoEvent[] = [];
  const taken = new Map<string, number>();
  let ended = false;
  let wake: Array<() => void> = [];
  const notify = () => {
    const w = wake;
    wake = [];
    for (const f of w) f();
  };
  const lines = createInterface({ input: proc.stdout! });
  lines.on('line', (line) => {
    try {
      log.push(JSON.parse(line) as DemoEvent);
      notify();
    } catch {
      // not an event line
    }
  });
  lines.on('close', () => {
    ended = true;
    notify();
  });
  const find = async (event: string, from: number): Promise<number> => {
    for (let i = from; ; i++) {
      while (i >= log.length) {
        if (ended) throw new Error(`demo process ${name} ended before "${event}"`);
        await new Promise<void>((r) => wake.push(r));
      }
      if (log[i]!.event === event) return i;
    }
  };
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    name,
    proc,
    send: (command) => void proc.stdin!.write(JSON.stringify(command) + '\n'),
    async next(event) {
      const i = await find(event, taken.get(event) ?? 0);
      taken.set(event, i + 1);
      return log[i]!;
    },
    mark: () => log.length,
    seen: async (event, mark) => log[await find(event, mark)]!,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.stdin!.end();
      const t = setTimeout(() => proc.kill('SIGTERM'), 2_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** In a child: an event line for the orchestrator. */
export function emit(event: DemoEvent): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

/** In a child: each command line from the orchestrator; the process exits when stdin ends. */
export function onCommands(handle: (command: DemoEvent) => void | Promise<void>): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let cmd: DemoEvent;
    try {
      cmd = JSON.parse(line) as DemoEvent;
    } catch {
      return;
    }
    void Promise.resolve(handle(cmd)).catch((e: Error) => emit({ event: 'error', message: e.message }));
  });
  lines.on('close', () => process.exit(0));
}
