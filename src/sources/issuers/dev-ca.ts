/** The in-process dev CA as an Issuer: signs the source's CSR (DevCa.signCsr), as a control plane's CA would. */
import { type DevCa } from '../../identity/dev-ca.js';
import { type Issuer } from '../renewing.js';

export function devCaIssuer(ca: DevCa): Issuer {
  return {
    description: `dev CA of ${ca.trustDomain}`,
    trustDomain: ca.trustDomain,
    issue: async ({ csrPem, spiffeId, ttlMs }) => ca.signCsr(csrPem, { spiffeId, ...(ttlMs !== undefined && { ttlMs }) }),
  };
}
