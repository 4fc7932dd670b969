// A local invoker for wrapped serverless handlers (no cloud): runs a child process that serves
// invocations as JSON lines on stdin/stdout (test/fixtures/serverless/runtime.ts), and freezes
// and thaws it as a platform does between invocations (SIGSTOP / SIGCONT). An invocation can be
// written while the child is frozen: it waits in the pipe and is read the moment the child wakes,
// together with whatever timers fell due during the freeze (Lambda's order of events). Closing
// stdin ends the invocations: the child must then exit by itself (nothing keeps its loop alive).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const RUNTIME = fileURLToPath(new URL('../fixtures/serverless/runtime.ts', import.meta.url));

export interface InvocationResult {
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: { code?: string; message: string };
}

export interface Invoker {
  readonly child: ChildProcess;
  /** Resolves once the child has loaded the handler's module. */
  readonly ready: Promise<void>;
  /** Everything the child wrote on stderr, by line. */
  readonly stderr: string[];
  /** Writes one event; resolves with its answer (the child may be frozen when this is called). */
  invoke(event: unknown, timeoutMs?: number): Promise<InvocationResult>;
  freeze(): void;
  thaw(): void;
  /** Closes stdin and waits for the child to exit by itself; rejects after `timeoutMs`. */
  end(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `handlerModule` exports `handler` (a wrapped handler); `config` is handed to it as SERVERLESS_FIXTURE (JSON). */
export function startInvoker(t: { after(fn: () => unknown): void }, handlerModule: string, config: unknown): Invoker {
  const child = spawn(process.execPath, ['--import', 'tsx', RUNTIME, handlerModule], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SERVERLESS_FIXTURE: JSON.stringify(config), NODE_OPTIONS: '' },
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  const answers: Array<(r: InvocationResult) => void> = [];
  let loaded: () => void;
  const ready = new Promise<void>((r) => (loaded = r));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const msg = JSON.parse(l) as InvocationResult & { ready?: true };
    if (msg.ready) loaded();
    else answers.shift()?.(msg);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    stderr,
    ready,
    invoke: (event, timeoutMs = 8_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer from the child within ${timeoutMs} ms; its stderr:\n${stderr.join('\n')}`)), timeoutMs);
        answers.push((r) => {
          clearTimeout(timer);
          resolve(r);
        });
        child.stdin!.write(`${JSON.stringify(event)}\n`);
      }),
    freeze: () => child.kill('SIGSTOP'),
    thaw: () => child.kill('SIGCONT'),
    end: (timeoutMs = 3_000) => {
      child.stdin!.end();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the child did not exit by itself within ${timeoutMs} ms of its last invocation: something keeps its event loop alive`)), timeoutMs);
        void exited.then((r) => {
          clearTimeout(timer);
          resolve(r);
        });
      });
    },
  };
}
