/**
 * `@opentelemetry/api` is an optional peer: pnpm's strict layout and `--legacy-peer-deps` leave it
 * out, and the mesh must work without it (telemetry off, `mesh.stats()` and the admin endpoint
 * unaffected). It is resolved once, when this module is loaded, through require, which works in the
 * ESM and the CJS build alike (a static import would fail at link time when it is missing, before
 * any code could notice), as undici and @peculiar/x509 are loaded. The API is a CommonJS package, so
 * this is the same module instance an app's own `import ... from '@opentelemetry/api'` gets, and
 * providers the app registers are seen here.
 *
 * Without the API no MeterProvider or TracerProvider can be registered, so `instruments()` and
 * `tracer()` are chosen at load to return undefined; everything else that touches the API runs only
 * behind them. With the API, the hot path does exactly what it did with a static import.
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

/** `@opentelemetry/api`, or undefined when it is not installed. */
export const otel: OtelApi | undefined = loadOtelApi();

/**
 * The API's exports for modules to destructure once, as they would a static import. Without the API
 * it is empty: those bindings are undefined, and are reached only behind `instruments()` and
 * `tracer()`, which then return undefined.
 */
export const api: OtelApi = otel ?? ({} as OtelApi);

/** Process-wide (ESM and CJS copies of the mesh share it): the missing API is reported once. */
const kReported = Symbol.for('sidecarless.v1.otel.missingReported');

export const TELEMETRY_OFF_MESSAGE =
  `${OTEL_API} is not installed: OpenTelemetry metrics and traces are off (mesh.stats(), the admin endpoint ` +
  `and \`sidecarless stat\` still work). Install ${OTEL_API} (an optional peer) to turn them on.`;

/** Logs, once per process, that OpenTelemetry is off because the API is missing. */
export function reportTelemetryOff(logger: { info(msg: string): void }, installed: boolean = otel !== undefined): void {
  if (installed) return;
  const g = globalThis as { [kReported]?: boolean };
  if (g[kReported]) return;
  g[kReported] = true;
  logger.info(TELEMETRY_OFF_MESSAGE);
}
