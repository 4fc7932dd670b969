/**
 * `sidecarless control-plane token`: prints a bearer token the embedded control plane's CA accepts
 * for one workload (namespace + service account), signed with <state>/token-key.pem. Only the
 * token goes to stdout, so `TOKEN=$(sidecarless control-plane token …)` works. Reads the state; never
 * creates one (the control plane does on its first start).
 */
import { loadTokenKey } from '../server/ca/state.js';
import { DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS, checkSubject, issueToken } from '../server/ca/tokens.js';
import { systemClock } from '../clock.js';
import { UsageError, defineCommand } from './args.js';
import { positiveTtl } from './ca-init.js';

export const controlPlaneTokenCommand = defineCommand({
  name: 'control-plane token',
  summary: "print a bearer token the control plane's CA accepts for one workload",
  description:
    'Prints a signed bearer token (a JWT shaped like a Kubernetes service-account token, audience\n' +
    'istio-ca) for spiffe://<trust domain>/ns/NS/sa/SA. The control plane\'s CA issues an SVID for\n' +
    'that identity only, to whoever presents it: treat it as a secret. It cannot be revoked; it\n' +
    'expires (default 1h, at most 24h). Removing <state>/token-key.pem voids every token issued.',
  options: {
    state: { type: 'string', required: true, value: 'DIR', help: 'the --state directory of the control plane (it holds token-key.pem)' },
    namespace: { type: 'string', required: true, value: 'NS', help: 'the workload\'s namespace, e.g. default' },
    'service-account': { type: 'string', required: true, value: 'SA', help: 'the workload\'s service account, e.g. orders' },
    ttl: { type: 'string', value: '1h', help: `lifetime of the token (default ${DEFAULT_TOKEN_TTL_MS / 3_600_000}h, at most ${MAX_TOKEN_TTL_MS / 3_600_000}h)` },
  },
  examples: ['sidecarless control-plane token --state ./cp-state --namespace default --service-account orders > orders.token'],
  async run(v, io) {
    const ttlMs = v.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : positiveTtl(v.ttl, MAX_TOKEN_TTL_MS, '24h');
    const subject = { namespace: v.namespace!, serviceAccount: v['service-account']! };
    try {
      checkSubject(subject);
    } catch (e) {
      throw new UsageError((e as Error).message.startsWith('namespace') ? `--namespace: ${(e as Error).message}` : `--service-account: ${(e as Error).message}`);
    }
    const tokenKey = await loadTokenKey(v.state!);
    io.stdout(issueToken({ tokenKey, clock: systemClock }, { ...subject, ttlMs }));
    return 0;
  },
});
