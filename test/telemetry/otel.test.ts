// How @opentelemetry/api is found: present (this repository), absent (an empty directory), or
// broken (a package whose own files are missing: that is an error, never "telemetry off").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as realApi from '@opentelemetry/api';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { TELEMETRY_OFF_MESSAGE, loadOtelApi, otelApi, reportTelemetryOff } from '../../src/telemetry/otel.js';
import { instruments } from '../../src/telemetry/instruments.js';
import { tracer } from '../../src/telemetry/tracing.js';
import { tempDir } from '../e2e/process.js';

test('installed: the API is the same instance the app imports (providers it registers are seen)', () => {
  const otel = otelApi();
  assert.ok(otel);
  assert.equal(otel.metrics, realApi.metrics);
  assert.equal(otel.trace, realApi.trace);
});

test('not installed: undefined, and nothing to record', async (t) => {
  const dir = await tempDir(t);
  assert.equal(loadOtelApi(createRequire(join(dir, 'app.js'))), undefined);
  // With nothing registered (as without the API), the gates answer undefined.
  assert.equal(instruments(), undefined);
  assert.equal(tracer(), undefined);
});

test('a broken install is an error, not "telemetry off"', async (t) => {
  const dir = await tempDir(t);
  const pkg = join(dir, 'node_modules', '@opentelemetry', 'api');
  await mkdir(pkg, { recursive: true });
  await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: '@opentelemetry/api', version: '1.9.1', main: 'index.js' }));
  await writeFile(join(pkg, 'index.js'), "module.exports = require('./build/src/index.js');\n");
  assert.throws(() => loadOtelApi(createRequire(join(dir, 'app.js'))), /Cannot find module '\.\/build\/src\/index\.js'/);
  await writeFile(join(pkg, 'index.js'), 'module.exports = {;\n');
  // (a SyntaxError; under tsx, its transform error)
  assert.throws(() => loadOtelApi(createRequire(join(dir, 'app.js'))), (e: Error) => !/Cannot find module/.test(e.message));
});

test('telemetry off is reported once per process, and never while the API is there', () => {
  const lines: string[] = [];
  const logger = { info: (m: string) => lines.push(m) };
  reportTelemetryOff(logger);
  assert.equal(lines.length, 0, 'the API is installed here');
  reportTelemetryOff(logger, false);
  reportTelemetryOff(logger, false);
  reportTelemetryOff({ info: (m: string) => lines.push(m) }, false);
  assert.deepEqual(lines, [TELEMETRY_OFF_MESSAGE]);
});
