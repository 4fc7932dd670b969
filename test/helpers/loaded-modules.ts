// What a child process loaded, for the lazy-loading tests and the bench: `RECORD_MODULES` is the
// opening of a child ESM script (run with `--input-type=module -e`, under `--import tsx` for src):
// it registers a module hook that reports every module URL the loader loads, and defines
//   await loaded()  → every ES module URL loaded so far, and every CommonJS file in require.cache
// (grpc-js is CommonJS: an ESM import of it lands in require.cache too).
const HOOK = 'let port; export function initialize(d) { port = d.port; } export async function load(url, context, next) { port.postMessage(url); return next(url, context); }';

export const RECORD_MODULES = `
import { createRequire as __cr, register as __reg } from 'node:module';
import { MessageChannel as __MC } from 'node:worker_threads';
const __urls = new Set();
const { port1: __p1, port2: __p2 } = new __MC();
__p1.on('message', (u) => __urls.add(u));
__p1.unref();
__reg(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOK)}`)}, { data: { port: __p2 }, transferList: [__p2] });
const __require = __cr(import.meta.url);
/** Waits for the hook thread's messages, then lists every module loaded so far. */
const loaded = async () => {
  await new Promise((r) => setTimeout(r, 50));
  return [...__urls, ...Object.keys(__require.cache)];
};
`;

/** The xDS stack's modules among `urls`: the control plane's code, its Envoy codecs, grpc-js. */
export function xdsModules(urls: readonly string[]): { xds: string[]; envoy: string[]; grpc: string[] } {
  return {
    xds: urls.filter((u) => u.includes('/src/control-plane/xds/')),
    envoy: urls.filter((u) => u.includes('/src/proto/envoy/')),
    grpc: urls.filter((u) => u.includes('/@grpc/grpc-js/')),
  };
}
