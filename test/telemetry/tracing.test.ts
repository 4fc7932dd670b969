// Trace context across real processes: client → relay (server, then client) → leaf (server), each
// a separate `node --import tsx` process with a tiny TracerProvider of its own (no SDK). All spans
// share one trace id; each server span is the child of the client span that called it; the relay's
// outbound client span is the child of its server span (the app's handler ran in its context).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDevCa } from '../../src/index.js';
import { BUNDLE_FILE, KEY_FILE, SVID_FILE } from '../../src/sources/dir.js';
import { ROOT, type Service, run, startService } from '../e2e/process.js';
import { tempDir } from '../helpers/certs.js';

const FIXTURE = join(ROOT, 'test/fixtures/telemetry/trace-node.ts');
const services: Service[] = [];
after(async () => {
  for (const s of services) await s.stop();
});

interface SpanLine {
  role: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes?: Record<string, unknown> }>;
}

const spansOf = (out: string): SpanLine[] =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"event":"span"'))
    .map((l) => JSON.parse(l) as SpanLine);

test('one trace crosses client → server → client → server over real processes, parent links right', { timeout: 60_000 }, async () => {
  const { dir: work, remove } = await tempDir();
  try {
    const ca = await createDevCa();
    for (const sa of ['client', 'relay', 'leaf']) {
      const d = join(work, sa);
      await mkdir(d, { recursive: true });
      const svid = await ca.issue({ spiffeId: `spiffe://cluster.local/ns/default/sa/${sa}` });
      await writeFile(join(d, SVID_FILE), svid.certChainPem);
      await writeFile(join(d, KEY_FILE), svid.keyPem, { mode: 0o600 });
      await writeFile(join(d, BUNDLE_FILE), svid.bundlePem);
    }
    const leaf = await startService(['--import', 'tsx', FIXTURE, '--role', 'leaf', '--dir', join(work, 'leaf')], /"event":"listening","port":(\d+)/);
    services.push(leaf);
    // The relay uses a registered global propagator; client and leaf the mesh's built-in W3C one.
    const relay = await startService(['--import', 'tsx', FIXTURE, '--role', 'relay', '--dir', join(work, 'relay'), '--next', leaf.match[1]!], /"event":"listening","port":(\d+)/, { PROPAGATOR: '1' });
    services.push(relay);
    const client = await run(process.execPath, ['--import', 'tsx', FIXTURE, '--role', 'client', '--dir', join(work, 'client'), '--target', relay.match[1]!], { timeoutMs: 30_000 });
    assert.equal(client.code, 0, client.stderr);
    const result = client.stdout.split('\n').map((l) => (l.startsWith('{') ? JSON.parse(l) : {})).find((e) => e.event === 'result');
    assert.equal(result.status, 200, client.stdout);

    // Server spans end on 'close', just after the response: wait for them.
    const deadline = Date.now() + 10_000;
    while ((spansOf(relay.output()).length < 2 || spansOf(leaf.output()).length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const cs = spansOf(client.stdout);
    const rs = spansOf(relay.output());
    const ls = spansOf(leaf.output());
    const all = [...cs, ...rs, ...ls];
    assert.equal(all.length, 5, JSON.stringify(all, null, 1));

    const SERVER = 1;
    const CLIENT = 2;
    const root = cs.find((s) => s.name === 'root')!;
    const c1 = cs.find((s) => s.kind === CLIENT)!;
    const s2 = rs.find((s) => s.kind === SERVER)!;
    const c2 = rs.find((s) => s.kind === CLIENT)!;
    const s3 = ls.find((s) => s.kind === SERVER)!;
    for (const s of [root, c1, s2, c2, s3]) assert.ok(s, 'every span is there');
    assert.equal(new Set(all.map((s) => s.traceId)).size, 1, 'one trace id');
    assert.equal(root.parentSpanId, undefined);
    assert.equal(c1.parentSpanId, root.spanId, 'client span under the app span');
    assert.equal(s2.parentSpanId, c1.spanId, 'relay server span under the client span (traceparent extracted)');
    assert.equal(c2.parentSpanId, s2.spanId, "relay's outbound call under its server span (the handler ran in its context)");
    assert.equal(s3.parentSpanId, c2.spanId, 'leaf server span under the relay client span');

    // What the spans say.
    assert.equal(c1.name, 'GET');
    assert.equal(c1.attributes['sidecarless.service'], 'relay');
    assert.equal(c1.attributes['sidecarless.peer.spiffe_id'], 'spiffe://cluster.local/ns/default/sa/relay');
    assert.equal(c1.attributes['http.response.status_code'], 200);
    assert.ok(c1.events.some((e) => e.name === 'sidecarless.attempt' && e.attributes?.['sidecarless.endpoint'] === `127.0.0.1:${relay.match[1]}`));
    assert.equal(s2.attributes['sidecarless.peer.spiffe_id'], 'spiffe://cluster.local/ns/default/sa/client');
    assert.equal(s2.attributes['sidecarless.tls'], 'mtls');
    assert.equal(s2.attributes['sidecarless.authz.decision'], 'allow');
    assert.equal(s3.attributes['url.path'], '/hop');
    assert.equal(s3.attributes['sidecarless.peer.spiffe_id'], 'spiffe://cluster.local/ns/default/sa/relay');
    // The leaf's handler saw its own server span as the active one, and the traceparent of c2.
    assert.equal(result.body.leaf.active, s3.spanId);
    assert.equal(result.body.leaf.traceparent, `00-${s3.traceId}-${c2.spanId}-01`);
    assert.equal(result.body.active, s2.spanId);
  } finally {
    await remove();
  }
});
