/**
 * The mesh's `kJudgeFronted` hook (hooks.ts): the fronted judge (inbound/fronted/judge.ts) over
 * this mesh's policy gate, `inbound.jwtSvid` and `inbound.frontEnd`, its JWT bundles (mesh/jwt.ts:
 * Workload API, dev CA, bundle file) and its X.509 bundles (the identity source's). Built once per
 * mesh; reads the settings once (they are options, not snapshot state).
 */
import { judgeFronted } from '../inbound/fronted/judge.js';
import { type FrontedRequest, type FrontedVerdict, type JudgeFrontedHook } from './hooks.js';
import { type MeshJwt } from './jwt.js';
import { type MeshParts } from './parts.js';

export function frontedJudge(p: MeshParts, jwt: MeshJwt): JudgeFrontedHook {
  const { config, source, clock } = p;
  const j = config.inbound.jwtSvid;
  const deps = {
    gate: p.inbound.gate,
    audiences: j === undefined ? undefined : typeof j.audience === 'string' ? [j.audience] : [...j.audience],
    frontEnd: config.inbound.frontEnd,
    identityHeaders: config.inbound.identityHeaders,
    realm: config.spiffeId,
    jwtBundles: () => jwt.bundles(),
    x509Bundles: () => source.getBundles(),
    now: () => clock.now(),
    logError: (message: string) => (p.logger.error ? p.logger.error(message) : p.logger.warn(message)),
  };
  return (request: FrontedRequest): Promise<FrontedVerdict> => judgeFronted(deps, request);
}
