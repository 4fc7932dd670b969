// An AWS Lambda handler with a mesh: `export const handler` is what Lambda's Node.js runtime calls.
// Its identity comes from files (SIDECARLESS_IDENTITY_DIR: svid.pem, svid_key.pem,
// svid_bundle.pem, e.g. from `sidecarless svid issue` or a secret the platform mounts); it calls
// `payments` over mTLS by name. An HTTP event (API Gateway, a Function URL, an ALB) is judged by
// the inbound policy before this code runs; any other event (a schedule, SQS) is not HTTP and
// passes (the platform's IAM authorized the invocation).
//
//   node --import tsx examples/serverless/invoke-local.ts     (runs it locally, frozen between invocations)
import { withMesh } from 'sidecarless/serverless';

export const handler = withMesh(
  async (event: { rawPath?: string; source?: string }, context, mesh) => {
    const res = await mesh.fetch('http://payments/whoami');
    const payments = (await res.json()) as { server: string; caller: string };
    const body = { function: mesh.spiffeId, caller: context.peer?.spiffeId ?? null, trigger: event.rawPath ?? event.source ?? 'unknown', payments };
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  },
  {
    service: process.env.SIDECARLESS_SERVICE ?? 'orders',
    inbound: {
      defaultPolicy: 'all-unauthenticated', // the front end terminated TLS: no client certificate here
      policy: { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin/*'] } }] },
    },
    outbound: { services: { payments: { endpoints: (process.env.PAYMENTS_ENDPOINTS ?? '127.0.0.1:8443').split(',') } } },
  },
);
