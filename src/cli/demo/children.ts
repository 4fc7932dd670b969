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
  /** The next event named `event` (earlier events of other names are skipped). */
  next(event: string): Promise<DemoEvent>;
  /** Ends the child (closes its stdin, then SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

export function startChild(name: string, role: string, args: string[]): Child {
  const proc = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'demo', '--role', role, '--name', name, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, SIDECARLESS_DEMO_CHILD: '1' },
  });
  proc.stdin!.on('error', () => {});
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    name,
    proc,
    send: (command) => void proc.stdin!.write(JSON.stringify(command) + '\n'),
    async next(event) {
      for (;;) {
        const r = await lines.next();
        if (r.done) throw new Error(`demo process ${name} ended before "${event}"`);
        let ev: DemoEvent;
        try {
          ev = JSON.parse(r.value) as DemoEvent;
        } catch {
          continue; // not an event line
        }
        if (ev.event === event) return ev;
      }
    },
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
