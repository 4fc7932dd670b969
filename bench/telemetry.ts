/**
 * Telemetry overhead: throughput of mesh.fetch → mesh.createServer (mTLS, policy, one process) with
 * an OpenTelemetry SDK MeterProvider (@opentelemetry/sdk-metrics, a reader collecting every round),
 * a recording TracerProvider and an AsyncLocalStorage context manager registered, against none at
 * all — same meshes, same run, alternating rounds. Goal: ≤ 5 % lower with the SDK.
 *
 * The tracer is a small recording one (spans keep their attributes and events and are handed to a
 * buffer when they end), standing in for @opentelemetry/sdk-trace-base, which is not a dependency.
 *   node --import tsx bench/telemetry.ts [--quick]
 *   BENCH_TELEMETRY_PARTS=metrics|trace|context (comma-separated) registers only those parts in the SDK rounds.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
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

/** Ids as the SDK's RandomIdGenerator makes them (Math.random, not crypto). */
function randomId(bytes: number): string {
  let out = '';
  for (let i = 0; i < bytes * 2; i++) out += ((Math.random() * 16) | 0).toString(16);
  return out;
}

const finished: unknown[] = [];
class RecordingSpan implements Span {
  readonly attributes: Record<string, unknown>;
  readonly events: Array<{ name: string; attributes?: unknown; time: number }> = [];
  readonly start = performance.now();
  constructor(public name: string, readonly kind: SpanKind, readonly ctx: SpanContext, readonly parent: string | undefined, attributes?: Record<string, unknown>) {
    this.attributes = { ...attributes };
  }
  spanContext() {
    return this.ctx;
  }
  setAttribute(k: string, v: unknown) {
    this.attributes[k] = v;
    return this;
  }
  setAttributes(a: Record<string, unknown>) {
    Object.assign(this.attributes, a);
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

export async function benchTelemetry(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const rounds = opts.quick ? 4 : 8;
  const roundMs = opts.quick ? 1_000 : 2_500;
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
  const parts = (process.env.BENCH_TELEMETRY_PARTS ?? 'metrics,trace,context').split(',');
  const sdkOn = () => {
    if (parts.includes('metrics')) metrics.setGlobalMeterProvider(meterProvider);
    if (parts.includes('trace')) trace.setGlobalTracerProvider({ getTracer: () => recordingTracer });
    if (parts.includes('context')) context.setGlobalContextManager(contextManager);
  };
  const sdkOff = () => {
    metrics.disable();
    trace.disable();
    context.disable();
  };

  const round = async (): Promise<{ rps: number; p50: number; p99: number }> => {
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
    lat.sort((a, b) => a - b);
    return { rps: lat.length / secs, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! };
  };

  // Warm up both ways (JIT, connections), then alternate.
  sdkOff();
  await round();
  sdkOn();
  await round();
  await reader.collect();
  const res: Record<'none' | 'sdk', Array<{ rps: number; p50: number; p99: number }>> = { none: [], sdk: [] };
  for (let i = 0; i < rounds; i++) {
    for (const mode of i % 2 === 0 ? (['none', 'sdk'] as const) : (['sdk', 'none'] as const)) {
      if (mode === 'sdk') sdkOn();
      else sdkOff();
      res[mode].push(await round());
      if (mode === 'sdk') await reader.collect();
    }
  }
  sdkOff();
  await orders.close();
  await payments.close();
  await new Promise((r) => server.close(r));
  await meterProvider.shutdown();

  const row = (mode: 'none' | 'sdk', label: string) => ({
    setup: label,
    'req/s (median)': Math.round(median(res[mode].map((r) => r.rps))),
    'p50 ms': Math.round(median(res[mode].map((r) => r.p50)) * 1000) / 1000,
    'p99 ms': Math.round(median(res[mode].map((r) => r.p99)) * 1000) / 1000,
    rounds: res[mode].length,
  });
  const none = median(res.none.map((r) => r.rps));
  const sdk = median(res.sdk.map((r) => r.rps));
  const lower = (1 - sdk / none) * 100;
  return {
    name: `telemetry overhead: mesh.fetch → mesh.createServer, ${concurrency} in flight, ${rounds} alternating rounds of ${roundMs} ms (goal ≤ 5 % lower)`,
    rows: [
      row('none', 'no MeterProvider, no TracerProvider'),
      row('sdk', 'sdk-metrics MeterProvider + recording TracerProvider + ALS context'),
      { setup: 'throughput lower with the SDK (%)', 'req/s (median)': Math.round(lower * 10) / 10, 'p50 ms': '', 'p99 ms': '', rounds: lower <= 5 ? 'goal met' : 'ABOVE GOAL' },
    ],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchTelemetry({ quick: process.argv.includes('--quick') });
  console.log(r.name);
  console.table(r.rows);
}
