// A grpc-js server and client through the mesh: mutual TLS with SPIFFE identities on both sides,
// the policy judged per method, one call allowed and one denied.
//
//   npx tsx examples/grpc/payments.ts
//
// payments serves `shop.Payments` (Charge, Refund) with mesh.grpc.serverCredentials() and the
// mesh's interceptor; orders calls it through mesh.grpc.channelCredentials('payments'), which
// refuses any server that does not present payments' SPIFFE ID. The policy lets orders Charge;
// Refund is denied to everyone, so orders gets PERMISSION_DENIED (status 7) and the handler never
// runs. The service definition is hand-written (JSON messages): any definition works, generated
// code or @grpc/proto-loader's included.
import * as grpc from '@grpc/grpc-js';
import { createDevCa, createMesh, peerOf } from 'sidecarless';

const quiet = { info() {}, warn() {}, error() {} };
const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) };
const unary = (path: string) => ({ path, requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize });
const Payments: grpc.ServiceDefinition = { Charge: unary('/shop.Payments/Charge'), Refund: unary('/shop.Payments/Refund') };

const ca = await createDevCa(); // one trust domain for the demo (cluster.local)
const payments = await createMesh({
  service: 'payments',
  identity: { ca },
  grpc, // credentials built with this app's own grpc-js (grpc-js checks them by instanceof)
  logger: quiet,
  inbound: {
    policy: {
      rules: [
        { name: 'no-refunds', action: 'deny', to: { paths: ['/shop.Payments/Refund'] } },
        { name: 'orders-charge', action: 'allow', from: { identities: ['spiffe://cluster.local/ns/default/sa/orders'] }, to: { paths: ['/shop.Payments/Charge'] } },
      ],
    },
  },
});

const handled: string[] = [];
const server = new grpc.Server({ interceptors: [payments.grpc.interceptor()] });
server.addService(Payments, {
  Charge: (call: grpc.ServerUnaryCall<{ amount: number }, unknown>, done: grpc.sendUnaryData<unknown>) => {
    handled.push('Charge');
    done(null, { charged: call.request.amount, by: peerOf(call)?.spiffeId });
  },
  Refund: (_call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
    handled.push('Refund');
    done(null, { refunded: true });
  },
});
const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', payments.grpc.serverCredentials(), (e, p) => (e ? reject(e) : resolve(p))));
console.log(`payments serves shop.Payments on 127.0.0.1:${port} as ${payments.stats().identity.spiffeId}`);

const orders = await createMesh({ service: 'orders', identity: { ca }, grpc, logger: quiet });
const PaymentsClient = grpc.makeGenericClientConstructor(Payments, 'shop.Payments');
// In a cluster the target is a name (payments.default.svc:8443); for an IP the override keeps
// grpc-js from sending the IP as SNI (RFC 6066 forbids it; Node warns DEP0123).
const client = new PaymentsClient(`127.0.0.1:${port}`, orders.grpc.channelCredentials('payments'), { 'grpc.ssl_target_name_override': 'payments' }) as unknown as Record<string, (req: unknown, cb: (e: grpc.ServiceError | null, res?: unknown) => void) => void>;
const call = (method: 'Charge' | 'Refund', req: unknown) => new Promise<{ err: grpc.ServiceError | null; res?: unknown }>((resolve) => client[method]!(req, (err, res) => resolve({ err, res })));

const charge = await call('Charge', { amount: 42 });
console.log(`orders → Charge: ${charge.err ? `error ${charge.err.code} ${charge.err.details}` : `OK ${JSON.stringify(charge.res)}`}`);
const refund = await call('Refund', { order: 7 });
console.log(`orders → Refund: ${refund.err ? `status ${refund.err.code} (${grpc.status[refund.err.code]}) ${refund.err.details}` : `OK ${JSON.stringify(refund.res)}`}`);
console.log(`handlers that ran: ${handled.join(', ') || 'none'}`);

(client as unknown as grpc.Client).close();
await new Promise<void>((r) => server.tryShutdown(() => r()));
await Promise.all([payments.close(), orders.close()]);
const ok = charge.err === null && refund.err?.code === grpc.status.PERMISSION_DENIED && handled.join() === 'Charge';
process.exit(ok ? 0 : 1);
