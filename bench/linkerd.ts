/**
 * The Linkerd control plane (issue 16): push → applied. A mesh with `controlPlane.linkerd` against
 * the scripted Linkerd controllers on the Python stack (test/helpers/py/linkerd_identity.py,
 * linkerd_policy.py); the controller flips a route's split 100/0 ↔ 0/100 in the OutboundPolicy
 * stream, timed from before the command to the controller until the mesh's snapshot carries it.
 * That span includes the command's own trip to the Python process; the baseline, measured in the
 * same run, is that trip alone (a command that touches no stream), so the ratio and the difference
 * say what the mesh adds. Goal (docs/benchmarks.md): push → applied ≤ 50 ms p99.
 *
 *   npx tsx bench/linkerd.ts [--quick]
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMesh, type Mesh } from '../src/index.js';
import { startLinkerdIdentity } from '../test/helpers/linkerd-identity-server.js';
import { startLinkerdPolicyServer } from '../test/helpers/linkerd-policy-server.js';
import { makeTempDir } from '../test/helpers/tmp.js';
import { flag } from './lib/common.js';

type Row = Record<string, number | string>;
const NAME = 'Linkerd control plane (scripted controllers on grpcio, mTLS)';
const API = 'api.default.svc.cluster.local:8080';
const API_V2 = 'api-v2.default.svc.cluster.local:8080';
const quiet = { info() {}, warn() {}, error() {} };
const backend = (path: string, weight: number) => ({ backend: { backend: { balancer: { discovery: { dst: { path } } } } }, weight });
const outbound = (v1: number, v2: number) => ({
  protocol: { http1: { routes: [{ metadata: { default: 'http' }, rules: [{ matches: [{ path: { prefix: '/' } }], backends: { randomAvailable: { backends: [backend(API, v1), backend(API_V2, v2)] } } }] }] } },
});
const endpoint = (port: number, name: string) => ({ addr: { ip: { ipv4: 0x7f000001 }, port }, weight: 10000, tlsIdentity: { dnsLikeIdentity: { name }, serverName: { name } } });

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 100) / 100;
}

export async function benchLinkerd(opts: { quick: boolean }): Promise<{ name: string; rows: Row[] }> {
  const cleanups: Array<() => Promise<void>> = [];
  const dir = makeTempDir('sidecarless-bench-linkerd-');
  let mesh: Mesh | undefined;
  try {
    const id = await startLinkerdIdentity({ after: (fn) => void cleanups.push(fn) }, { tokens: { 'tok-web': { ns: 'default', sa: 'web' } } });
    const cp = await startLinkerdPolicyServer(undefined, undefined, id.dir);
    cleanups.push(() => cp.close());
    const token = join(dir.dir, 'web.token');
    await writeFile(token, 'tok-web');
    mesh = await createMesh({
      service: 'web',
      logger: quiet,
      controlPlane: { linkerd: { trustAnchors: { file: id.anchorsFile }, token: { file: token }, identity: { address: id.address, serverName: id.serverName }, destination: { address: cp.address }, policy: { address: cp.address }, workload: { namespace: 'default', pod: 'web-1' } } },
    });
    const api = 'api.default.serviceaccount.identity.linkerd.cluster.local';
    await cp.send({ cmd: 'set', rpc: 'Watch', key: API, json: outbound(100, 0) });
    await cp.send({ cmd: 'set', rpc: 'Get', key: API, json: { add: { addrs: [endpoint(9, api)] } } });
    await cp.send({ cmd: 'set', rpc: 'Get', key: API_V2, json: { add: { addrs: [endpoint(10, api)] } } });
    // The first request discovers the authority (its endpoints do not listen: only the snapshot matters here).
    await mesh.fetch(`http://${API}/`).then((r) => r.arrayBuffer(), () => undefined);
    const split = () => mesh!.snapshot().services.get(API)?.routes[0]?.split?.map((s) => s.weight).join('/');
    const n = opts.quick ? 30 : 150;
    const push: number[] = [];
    const trip: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await cp.send({ cmd: 'set', rpc: 'Watch', key: `unwatched-${i % 4}.default.svc.cluster.local:80`, json: outbound(1, 1) });
      trip.push(performance.now() - t0);
      const [v1, v2] = i % 2 === 0 ? [0, 100] : [100, 0];
      const t1 = performance.now();
      await cp.send({ cmd: 'push', rpc: 'Watch', key: API, json: outbound(v1, v2) });
      while (split() !== `${v1}/${v2}`) {
        if (performance.now() - t1 > 5000) throw new Error(`push ${i} not applied after 5 s (split ${split()})`);
        await new Promise((r) => setImmediate(r));
      }
      push.push(performance.now() - t1);
    }
    const rows: Row[] = [
      { measure: `controller command round trip, no stream (baseline, n = ${n})`, p50_ms: pct(trip, 50), p99_ms: pct(trip, 99) },
      { measure: `push OutboundPolicy → snapshot applied (n = ${n})`, p50_ms: pct(push, 50), p99_ms: pct(push, 99) },
      { measure: 'push → applied ÷ baseline (p50)', ratio: Math.round((pct(push, 50) / pct(trip, 50)) * 100) / 100 },
      { measure: 'push → applied − baseline (p50, ms): what the stream and the mesh add', p50_ms: Math.round((pct(push, 50) - pct(trip, 50)) * 100) / 100 },
    ];
    return { name: NAME, rows };
  } finally {
    await mesh?.close();
    for (const c of cleanups.reverse()) await c();
    await dir.remove();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await benchLinkerd({ quick: flag('--quick') });
  console.log(res.name);
  console.table(res.rows);
  process.exit(0);
}
