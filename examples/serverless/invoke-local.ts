// A local invoker for lambda.ts, no cloud needed: it runs the handler in a child process (as
// Lambda runs it in a sandbox), sends it events one at a time, and freezes the child between
// invocations with SIGSTOP/SIGCONT (Lambda freezes a sandbox between invocations: its timers stop,
// its servers' idle connections close). The next event is written while the child is frozen, as
// Lambda's next event waits for the thaw. When the events run out it closes the child's stdin: the
// child must exit by itself (nothing of the mesh keeps it alive).
//
//   SIDECARLESS_IDENTITY_DIR=./orders PAYMENTS_ENDPOINTS=127.0.0.1:8443 node --import tsx examples/serverless/invoke-local.ts
//
// FREEZE_MS (default 2000) is how long each freeze lasts.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const EVENTS: unknown[] = [
  { source: 'aws.events', 'detail-type': 'Scheduled Event' },
  { version: '2.0', rawPath: '/orders', rawQueryString: '', headers: { host: 'orders.example' }, requestContext: { domainName: 'orders.example', http: { method: 'GET', sourceIp: '192.0.2.1' } } },
  { version: '2.0', rawPath: '/admin/keys', rawQueryString: '', headers: { host: 'orders.example' }, requestContext: { domainName: 'orders.example', http: { method: 'GET', sourceIp: '192.0.2.1' } } },
];

if (process.argv[2] === '--child') await serve();
else await invoke();

/** The child: Lambda's runtime in miniature (one JSON event per stdin line, one JSON answer per stdout line). */
async function serve(): Promise<void> {
  const { handler } = await import('./lambda.js');
  let queue = Promise.resolve();
  createInterface({ input: process.stdin }).on('line', (line) => {
    queue = queue.then(async () => {
      const answer = await handler(JSON.parse(line), {}).then(
        (result) => ({ ok: true, result }),
        (e: Error & { code?: string }) => ({ ok: false, error: { code: e.code, message: e.message } }),
      );
      process.stdout.write(`${JSON.stringify(answer)}\n`);
    });
  });
}

async function invoke(): Promise<void> {
  const freezeMs = Number(process.env.FREEZE_MS ?? 2000);
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let failed = false;
  for (const [i, event] of EVENTS.entries()) {
    if (i > 0) {
      child.kill('SIGSTOP');
      console.log(`invoker: frozen for ${freezeMs} ms`);
      await new Promise((r) => setTimeout(r, freezeMs));
    }
    child.stdin!.write(`${JSON.stringify(event)}\n`);
    if (i > 0) child.kill('SIGCONT');
    const { value } = await answers.next();
    const answer = JSON.parse(value as string) as { ok: boolean; result?: { statusCode: number; body: string } };
    failed ||= !answer.ok;
    console.log(`invocation ${i + 1}: ${answer.ok ? `${answer.result!.statusCode} ${answer.result!.body}` : `failed ${JSON.stringify(answer)}`}`);
  }
  child.stdin!.end(); // no more events
  const timer = setTimeout(() => {
    console.log('invoker: the function did not exit by itself: something keeps its event loop alive');
    child.kill('SIGKILL');
  }, 5_000);
  const code = await exited;
  clearTimeout(timer);
  console.log(`invoker: the function exited by itself (code ${code})`);
  process.exitCode = failed || code !== 0 ? 1 : 0;
}
