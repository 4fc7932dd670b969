// A tiny gRPC service without .proto files (JSON messages), a grpc-js server with mesh
// credentials and interceptor, and promise helpers for unary and server-streaming calls.
import * as grpc from '@grpc/grpc-js';
import { type Mesh, peerOf } from '../../src/index.js';

export { grpc };

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as Record<string, unknown>,
};
const method = (path: string, responseStream: boolean) => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});

/** `demo.Pay`: Charge and Refund (unary), Watch (server streaming). */
export const PAY: grpc.ServiceDefinition = {
  Charge: method('/demo.Pay/Charge', false),
  Refund: method('/demo.Pay/Refund', false),
  Watch: method('/demo.Pay/Watch', true),
};

export const PayClient = grpc.makeGenericClientConstructor(PAY, 'demo.Pay');
export type PayClientType = InstanceType<typeof PayClient> & Record<string, (...a: unknown[]) => unknown>;

export interface PayServer {
  readonly port: number;
  /** Handler calls seen (unary and streaming). */
  readonly ran: string[];
  close(): Promise<void>;
}

/** The server side: mesh credentials + interceptor; handlers echo peerOf(call) and a request field. */
export async function servePay(mesh: Mesh, credentials = mesh.grpc.serverCredentials()): Promise<PayServer> {
  const server = new grpc.Server({ interceptors: [mesh.grpc.interceptor()] });
  const ran: string[] = [];
  const unary = (name: string) => (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    ran.push(name);
    cb(null, { peer: peerOf(call)?.id ?? null, n: call.request.n, xfcc: call.metadata.get('x-forwarded-client-cert') });
  };
  server.addService(PAY, {
    Charge: unary('Charge'),
    Refund: unary('Refund'),
    Watch: (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      ran.push('Watch');
      const peer = peerOf(call)?.id ?? null;
      for (let i = 0; i < Number(call.request.count); i++) call.write({ i, peer });
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (e, p) => (e ? reject(e) : resolve(p))));
  return {
    port,
    ran,
    close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
  };
}

export function payClient(port: number, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): PayClientType {
  return new PayClient(`127.0.0.1:${port}`, credentials, { 'grpc.ssl_target_name_override': 'payments', ...options }) as PayClientType;
}

export function unary(client: PayClientType, name: 'Charge' | 'Refund', req: unknown, md = new grpc.Metadata()): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    client[name]!(req, md, { deadline: Date.now() + 4_000 }, (e: grpc.ServiceError | null, res: Record<string, unknown>) => (e ? reject(e) : resolve(res))),
  );
}

export function watch(client: PayClientType, count: number): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const out: Array<Record<string, unknown>> = [];
    const s = client.Watch!({ count }, { deadline: Date.now() + 4_000 }) as grpc.ClientReadableStream<Record<string, unknown>>;
    s.on('data', (m) => out.push(m));
    s.on('error', reject);
    s.on('end', () => resolve(out));
  });
}
