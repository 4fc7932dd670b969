/**
 * Telemetry overhead: throughput and CPU of mesh.fetch → mesh.createServer (mTLS, policy, client
 * and server in one process) with parts of an OpenTelemetry SDK registered, against none at all —
 * same meshes, same run, rotating rounds, ratios paired round by round:
 *
 * - metrics: an @opentelemetry/sdk-metrics MeterProvider with a reader collecting every round
 *   (the goal: ≤ 5 % lower throughput than none);
 * - trace: a recording TracerProvider (spans keep their attributes and events and are handed to a
 *   2048-span buffer when they end), standing in for @opentelemetry/sdk-trace-base, which is not a
 *   dependency; it copies attributes and makes ids as that SDK does;
 * - context: an AsyncLocalStorage context manager, as the SDK's.
 *
 *   node --import tsx bench/telemetry.ts [--quick]
 *   BENCH_TELEMETRY_PARTS=metrics|trace|context (comma-separated): only none against that combination.
 *   BENCH_TELEMETRY_ROUNDS, BENCH_TELEMETRY_ROUND_MS: rounds and their length.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  type Context,
  type ContextManager,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  TraceFlags,
  type Tracer,
  context,
  metrics,
  trace,
} from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { createDevCa, createMesh } from '../src/index.js';

class AlsContextManager implements ContextManager {
  readonly #als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.#als.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#als.disable();
    return this;
  }
}

/** Ids as the SDK's RandomIdGenerator makes them (Math.random into a shared Buffer, hex; not crypto). */
const ID_BUFFER = Buffer.allocUnsafe(16);
function randomId(bytes: number): string {
  for (let i = 0; i < bytes / 4; i++) ID_BUFFER.writeUInt32BE((Math.random() * 2 ** 32) >>> 0, i * 4);
  return ID_BUFFER.toString('hex', 0, bytes);
}

const finished: unknown[] = [];
class RecordingSpan implements Span {
  readonly attributes: Record<string, unknown>;
  readonly events: Array<{ name: string; attributes?: unknown; time: number }> = [];
  readonly start = performance.now();
  constructor(public name: string, readonly kind: SpanKind, readonly ctx: SpanContext, readonly parent: string | undefined, attributes?: Record<string, unknown>) {
    // As sdk-trace-base's Span: a fresh object, the start attributes set one by one.
    this.attributes = {};
    if (attributes) for (const k of Object.keys(attributes)) this.setAttribute(k, attributes[k]);
  }
  spanContext() {
    return this.ctx;
  }
  setAttribute(k: string, v: unknown) {
    this.attributes[k] = v;
    return this;
  }
  setAttributes(a: Record<string, unknown>) {
    for (const k of Object.keys(a)) this.setAttribute(k, a[k]);
    return this;
  }
  addEvent(name: string, attributes?: unknown) {
    this.events.push({ name, attributes, time: performance.now() });
    return this;
  }
  addLink() {
    return this;
  }
  addLinks() {
    return this;
  }
  setStatus() {
    return this;
  }
  updateName(n: string) {
    this.name = n;
    return this;
  }
  end() {
    finished.push(this);
    if (finished.length >= 2048) finished.length = 0; // a batch "exported" (BatchSpanProcessor's default queue)
  }
  isRecording() {
    return true;
  }
  recordException() {}
}
const recordingTracer = {
  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    const parent = trace.getSpanContext(ctx);
    const sc = { traceId: parent?.traceId ?? randomId(16), spanId: randomId(8), traceFlags: TraceFlags.SAMPLED };
    return new RecordingSpan(name, options.kind ?? SpanKind.INTERNAL, sc, parent?.spanId, options.attributes as Record<string, unknown>);
  },
  startActiveSpan(name: string, ...args: unknown[]) {
    const fn = args.pop() as (s: Span) => unknown;
    const span = this.startSpan(name, (args[0] ?? {}) as SpanOptions);
    return context.with(trace.setSpan(context.active(), span), fn, undefined, span);
  },
} as Tracer;

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A telemetry setup: which parts of an SDK are registered while it is measured. */
interface Setup {
  readonly id: string;
  readonly label: string;
  readonly parts: readonly string[];
}

const SETUPS: readonly Setup[] = [
  { id: 'none', label: 'no MeterProvider, no TracerProvider', parts: [] },
  { id: 'metrics', label: 'sdk-metrics MeterProvider (the goal)', parts: ['metrics'] },
  { id: 'metrics+trace', label: '+ recording TracerProvider', parts: ['metrics', 'trace'] },
  { id: 'metrics+trace+context', label: '+ recording TracerProvider + AsyncLocalStorage context manager', parts: ['metrics', 'trace', 'context'] },
];

interface RoundResult {
  rps: number;
  p50: number;
  p99: number;
  /** Process CPU (client and server: one process) per request, µs. */
  cpuUs: number;
  /** GC pause per request, µs, and the longest pause of the round, ms. */
  gcUs: number;
  gcMaxMs: number;
  /** Of cpuUs, the kernel's share. */
  sysUs: number;
}

function spread(xs: number[], digits: number): string {
  const r = (x: number) => (Math.round(x * 10 ** digits) / 10 ** digits).toFixed(digits);
  return `${r(median(xs))} (${r(Math.min(...xs))}–${r(Math.max(...xs))})`;
}

/**
 * Every setup is measured in every round, in an order that rotates from round to round, so each
 * setup is compared with the "none" round run seconds before or after it in the same process: the
 * throughput ratio and the CPU difference are computed per round, then their median (min–max) is
 * reported. `BENCH_TELEMETRY_PARTS=metrics,trace` (comma-separated parts: metrics, trace, context)
 * measures only "none" against that combination.
 */
export async function benchTelemetry(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const rounds = Number(process.env.BENCH_TELEMETRY_ROUNDS ?? (opts.quick ? 4 : 10));
  const roundMs = Number(process.env.BENCH_TELEMETRY_ROUND_MS ?? (opts.quick ? 1_000 : 1_500));
  const concurrency = 16;
  const quiet = { info() {}, warn() {}, error() {} };
  const ca = await createDevCa();
  const payments = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { audit: () => {} } });
  const body = Buffer.alloc(256, 'x');
  const server = payments.createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const orders = await createMesh({ service: 'orders', identity: { ca }, logger: quiet, outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } });

  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AlsContextManager();
  const tracerProvider = { getTracer: () => recordingTracer };
  const only = process.env.BENCH_TELEMETRY_PARTS;
  const setups: readonly Setup[] = only
    ? [SETUPS[0]!, { id: only, label: `registered: ${only}`, parts: only.split(',').map((x) => x.trim()) }]
    : SETUPS;
  const use = (s: Setup) => {
    metrics.disable();
    trace.disable();
    context.disable();
    if (s.parts.includes('metrics')) metrics.setGlobalMeterProvider(meterProvider);
    if (s.parts.includes('trace')) trace.setGlobalTracerProvider(tracerProvider);
    if (s.parts.includes('context')) context.setGlobalContextManager(contextManager);
  };

  const round = async (): Promise<RoundResult> => {
    let gcMs = 0;
    let gcMaxMs = 0;
    const gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        gcMs += e.duration;
        gcMaxMs = Math.max(gcMaxMs, e.duration);
      }
    });
    gc.observe({ entryTypes: ['gc'] });
    const cpu0 = process.cpuUsage();
    const end = performance.now() + roundMs;
    const lat: number[] = [];
    const worker = async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const res = await orders.fetch('http://payments/charge');
        await res.arrayBuffer();
        lat.push(performance.now() - t0);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await new Promise((r) => setImmediate(r)); // GC entries are delivered asynchronously
    gc.disconnect();
    lat.sort((a, b) => a - b);
    return {
      rps: lat.length / secs,
      p50: lat[Math.floor(lat.length * 0.5)]!,
      p99: lat[Math.floor(lat.length * 0.99)]!,
      cpuUs: (cpu.user + cpu.system) / lat.length,
      gcUs: (gcMs * 1000) / lat.length,
      gcMaxMs,
      sysUs: cpu.system / lat.length,
    };
  };

  // Warm up every setup (JIT, connections, instruments), then rotate.
  for (const s of setups) {
    use(s);
    await round();
    await reader.collect();
  }
  const res = new Map<string, RoundResult[]>(setups.map((s) => [s.id, []]));
  for (let i = 0; i < rounds; i++) {
    const order = setups.map((_, j) => setups[(i + j) % setups.length]!);
    for (const s of order) {
      use(s);
      res.get(s.id)!.push(await round());
      if (s.parts.includes('metrics')) await reader.collect();
    }
  }
  if (process.env.BENCH_TELEMETRY_VERBOSE) for (const [id, xs] of res) console.error(id.padEnd(24), xs.map((x) => `${Math.round(x.rps)}/${x.cpuUs.toFixed(0)}µs(sys ${x.sysUs.toFixed(0)})`).join(' '));
  use(SETUPS[0]!);
  await orders.close();
  await payments.close();
  await new Promise((r) => server.close(r));
  await meterProvider.shutdown();

  const none = res.get('none')!;
  const rows = setups.map((s) => {
    const xs = res.get(s.id)!;
    const ratio = xs.map((x, i) => x.rps / none[i]!.rps);
    const lower = ratio.map((r) => (1 - r) * 100);
    const cpuMore = xs.map((x, i) => x.cpuUs - none[i]!.cpuUs);
    const judged = s.id === 'metrics' || (only !== undefined && s.id !== 'none');
    return {
      setup: s.label,
      'req/s': spread(xs.map((x) => x.rps), 0),
      'lower than none, % (per round)': s.id === 'none' ? '' : spread(lower, 1),
      'CPU µs/req': spread(xs.map((x) => x.cpuUs), 1),
      'CPU µs/req over none (per round)': s.id === 'none' ? '' : spread(cpuMore, 1),
      'GC µs/req': spread(xs.map((x) => x.gcUs), 1),
      'longest GC pause ms': spread(xs.map((x) => x.gcMaxMs), 1),
      'p50 ms': spread(xs.map((x) => x.p50), 2),
      'p99 ms': spread(xs.map((x) => x.p99), 2),
      goal: judged ? (median(lower) <= 5 ? `met (${median(lower).toFixed(1)} % ≤ 5 %)` : `MISSED (${median(lower).toFixed(1)} % > 5 %)`) : '',
    };
  });
  return {
    name: `telemetry overhead: mesh.fetch → mesh.createServer in one process, ${concurrency} in flight, ${rounds} rotating rounds of ${roundMs} ms per setup; goal: MeterProvider registered ≤ 5 % lower throughput than none (median of per-round ratios)`,
    rows,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchTelemetry({ quick: process.argv.includes('--quick') });
  console.log(r.name);
  console.table(r.rows);
}
