// The second, independent gRPC/protobuf stack: Debian's gRPC C-core and Python protobuf
// (python3-grpcio, python3-grpc-tools; .ci/run installs them), always run as /usr/bin/python3 (the
// machine's default python3 may be another build without them). The project's own .proto files
// are compiled by grpc_tools.protoc into a temporary directory, once per test process; scripts in
// this folder import the generated *_pb2 modules from it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../tmp.js';

export const PYTHON = '/usr/bin/python3';
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const PROTO_DIR = join(ROOT, 'src/proto');
export const PY_DIR = fileURLToPath(new URL('.', import.meta.url));

let compiled: string | undefined;

/** The directory holding workload_pb2.py, istio/ca_pb2.py, linkerd/identity_pb2.py and their *_pb2_grpc.py. */
export function compiledProtos(): string {
  if (compiled) return compiled;
  const out = makeTempDir('sidecarless-pyproto-').dir;
  const r = spawnSync(PYTHON, ['-m', 'grpc_tools.protoc', '-I', PROTO_DIR, `--python_out=${out}`, `--grpc_python_out=${out}`, 'workload.proto', 'istio/ca.proto', ...['identity', 'net', 'meta', 'http_types', 'http_route', 'grpc_route', 'destination', 'outbound', 'inbound'].map((f) => `linkerd/${f}.proto`)], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`${PYTHON} -m grpc_tools.protoc failed (${r.error?.message ?? r.stderr}). Install Debian's python3-grpcio and python3-grpc-tools (.ci/run does).`);
  }
  return (compiled = out);
}

function env(): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONPATH: `${compiledProtos()}:${PY_DIR}`, PYTHONUNBUFFERED: '1' };
}

/** Runs a script of this folder to its end with `input` on stdin; resolves with its stdout. */
export function runPython(script: string, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [join(PY_DIR, script)], { env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

/** Starts a long-running script of this folder (a server); the caller kills it. */
export function startPython(script: string, args: readonly string[]): ChildProcess {
  return spawn(PYTHON, [join(PY_DIR, script), ...args], { env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
}
