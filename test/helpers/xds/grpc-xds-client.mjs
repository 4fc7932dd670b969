// A child process: @grpc/grpc-js-xds (a real third-party xDS client) makes unary calls to an
// xds:/// target and reports which backend answered each. Plain JS, run with `node`.
//
// Bootstrap: GRPC_XDS_BOOTSTRAP (a file) or GRPC_XDS_BOOTSTRAP_CONFIG (inline JSON), read by
// grpc-js-xds itself. argv[2] is a JSON plan:
//   { "target": "xds:///payments.default.svc.cluster.local:8080", "deadlineMs": 3000, "timeoutMs": 20000, "concurrency": 8,
//     "phases": [ [ { "method": "/pkg.Svc/Method", "metadata": { "x-canary": "yes" }, "n": 400, "target": "xds:///other:80" } ], ... ] }
// (a set's optional `target` overrides the plan's: one channel per target, created on first use)
// "xdsCredentials": true makes the channels XdsChannelCredentials (the Clusters' TLS contexts, with
// the bootstrap's certificate providers; insecure only as the fallback when a Cluster has none).
// "serve": { "address": "127.0.0.1:9443", "name": "ledger", "methods": ["/x.L/Read"] } first starts
// an XdsServer there (XdsServerCredentials, its inbound Listener from the bootstrap's
// server_listener_resource_name_template) answering `name`, and waits until it is serving.
// For each phase it runs its call sets in order (`concurrency` calls of a set in flight) and prints one
// JSON line { "phase": i, "results": [ { "counts": { "<backend>": n }, "errors": { "<message>": n } } ] }.
// Before every phase but the first it waits for a line on stdin (the parent changes the server's
// resources in between). It exits after the last phase, when stdin closes, or after timeoutMs.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const xds = require('@grpc/grpc-js-xds');
// The grpc-js that grpc-js-xds registers its resolver into (its peer dependency).
const grpc = require(require.resolve('@grpc/grpc-js', { paths: [require.resolve('@grpc/grpc-js-xds')] }));

const plan = JSON.parse(process.argv[2] ?? '{}');
const timer = setTimeout(() => finish(2, 'timeoutMs elapsed'), plan.timeoutMs ?? 20_000);
timer.unref();

const lines = createInterface({ input: process.stdin });
const pending = [];
lines.on('line', () => pending.shift()?.());
lines.on('close', () => finish(0, null));
const nextLine = () => new Promise((resolve) => pending.push(resolve));

const clients = new Map();
function finish(code, why) {
  if (why) process.stderr.write(`grpc-xds-client: ${why}\n`);
  try {
    for (const c of clients.values()) c.close();
  } catch {}
  process.exit(code);
}

const channelCredentials = () => (plan.xdsCredentials ? new xds.XdsChannelCredentials(grpc.credentials.createInsecure()) : grpc.credentials.createInsecure());

function clientFor(target) {
  if (!clients.has(target)) clients.set(target, new grpc.Client(target, channelCredentials()));
  return clients.get(target);
}

function call(method, metadata, target) {
  const client = clientFor(target ?? plan.target);
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata ?? {})) md.set(k, v);
  return new Promise((resolve) => {
    const deadline = Date.now() + (plan.deadlineMs ?? 3_000);
    client.makeUnaryRequest(method, (b) => b, (b) => b, Buffer.alloc(0), md, { deadline }, (err, res) => {
      resolve(err ? { error: `${grpc.status[err.code] ?? err.code}: ${err.details}` } : { backend: res.toString() });
    });
  });
}

/** `n` calls, `plan.concurrency` (default 8) in flight; the first one alone (it waits for the config). */
async function runSet({ method, metadata, n, target }) {
  const counts = {};
  const errors = {};
  const one = async () => {
    const r = await call(method, metadata, target);
    if (r.backend !== undefined) counts[r.backend] = (counts[r.backend] ?? 0) + 1;
    else errors[r.error] = (errors[r.error] ?? 0) + 1;
  };
  let left = n;
  if (left-- > 0) await one();
  const worker = async () => {
    while (left-- > 0) await one();
  };
  await Promise.all(Array.from({ length: plan.concurrency ?? 8 }, worker));
  return { counts, errors };
}

/** The XdsServer of `plan.serve`; resolves once it is serving (bindAsync calls back only then). */
async function serve({ address, name, methods }) {
  const server = new xds.XdsServer();
  for (const path of methods) server.register(path, (_call, done) => done(null, Buffer.from(name)), (b) => b, (b) => b, 'unary');
  await new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error('XdsServer not serving after 10 s')), 10_000).unref();
    server.bindAsync(address, new xds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (e) => (e ? reject(e) : resolve()));
    server.addServingStateListener(address, (s) => s.code !== grpc.status.OK && process.stderr.write(`grpc-xds-client: XdsServer not serving: ${s.details}\n`));
  });
  return server;
}

async function main() {
  xds.register();
  if (plan.serve) await serve(plan.serve);
  clientFor(plan.target);
  for (const [phase, sets] of (plan.phases ?? []).entries()) {
    if (phase > 0) await nextLine();
    const results = [];
    for (const set of sets) results.push(await runSet(set));
    process.stdout.write(`${JSON.stringify({ phase, results })}\n`);
  }
  finish(0, null);
}

main().catch((e) => finish(1, e?.stack ?? String(e)));
