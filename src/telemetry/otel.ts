/**
 * `@opentelemetry/api` is an optional peer: pnpm's strict layout and `--legacy-peer-deps` leave it
 * out, and the mesh must work without it (telemetry off, `mesh.stats()` and the admin endpoint
 * unaffected). It is loaded through require, which works in the ESM and the CJS build alike (a
 * static import would fail at link time when it is missing, before any code could notice), as
 * undici and @peculiar/x509 are loaded. The API is a CommonJS package, so this is the same module
 * instance an app's own `import ... from '@opentelemetry/api'` gets, and providers the app
 * registers are seen here.
 *
 * It is loaded on first use, not at import (cold start, issue 14): until something registers a
 * global with the API (a MeterProvider, a TracerProvider, a propagator, a context manager), every
 * call the mesh would make is a no-op, and the API keeps those globals on one process-wide
 * `Symbol.for` key. `otelInUse()` looks at that key (one property read) and loads the API the
 * first time it is set; `instruments()` and `tracer()` return undefined before that, as they do
 * without the API; everything else that touches the API runs only behind them.
 */
import { createRequire } from 'node:module';
import type * as Api from '@opentelemetry/api';

export type OtelApi = typeof Api;

export const OTEL_API = '@opentelemetry/api';

/** The API, or undefined when it cannot be resolved from here. Anything else (a broken install) throws. */
export function loadOtelApi(load: (id: string) => unknown = createRequire(import.meta.url)): OtelApi | undefined {
  try {
    return load(OTEL_API) as OtelApi;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && err.message.startsWith(`Cannot find module '${OTEL_API}'`)) return undefined;
    throw e;
  }
}

let loaded: OtelApi | undefined | null = null;

/**
 * The API's exports, filled when it is loaded (`otelApi()`, `otelInUse()`): read them as `api.trace`
 * at the point of use, never destructured at load. Empty until then, and for good without the API:
 * they are reached only behind `instruments()` and `tracer()`, which then return undefined.
 */
export const api: OtelApi = {} as OtelApi;

/** `@opentelemetry/api` (loaded the first time this is called), or undefined when it is not installed. */
export function otelApi(): OtelApi | undefined {
  if (loaded === null) {
    loaded = loadOtelApi();
    if (loaded) Object.assign(api, loaded);
  }
  return loaded;
}

/** Where the API (major version 1) keeps what was registered with it: set by its first registerGlobal. */
const kApiGlobals = Symbol.for('opentelemetry.js.api.1');

/** The API once something has registered a global with it (loading it then); undefined before, or without it. */
export function otelInUse(): OtelApi | undefined {
  if (loaded !== null) return loaded ?? undefined;
  return (globalThis as { [kApiGlobals]?: unknown })[kApiGlobals] === undefined ? undefined : otelApi();
}

/** Whether the API can be resolved from here, without loading it. */
let resolvable: boolean | undefined;
function otelInstalled(): boolean {
  if (loaded !== null) return loaded !== undefined;
  if (resolvable === undefined) {
    try {
      createRequire(import.meta.url).resolve(OTEL_API);
      resolvable = true;
    } catch {
      resolvable = false;
    }
  }
  return resolvable;
}

/** Process-wide (ESM and CJS copies of the mesh share it): the missing API is reported once. */
const kReported = Symbol.for('sidecarless.v1.otel.missingReported');

export const TELEMETRY_OFF_MESSAGE =
  `${OTEL_API} is not installed: OpenTelemetry metrics and traces are off (mesh.stats(), the admin endpoint ` +
  `and \`sidecarless stat\` still work). Install ${OTEL_API} (an optional peer) to turn them on.`;

/** Logs, once per process, that OpenTelemetry is off because the API is missing. */
export function reportTelemetryOff(logger: { info(msg: string): void }, installed?: boolean): void {
  if (installed ?? otelInstalled()) return;
  const g = globalThis as { [kReported]?: boolean };
  if (g[kReported]) return;
  g[kReported] = true;
  logger.info(TELEMETRY_OFF_MESSAGE);
}
