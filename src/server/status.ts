/**
 * What `/status` (and `sidecarless control-plane status`) shows: the mesh file served (and the
 * last rejected edit), the services with their endpoints (static or registered, up or leaving),
 * every connected ADS client with what it subscribes to, the version it ACKed and its last NACK,
 * the certificates the CA issued, and how many JWT-SVIDs it issued. No key material, no tokens. Pure over its inputs.
 */
import { VERSION } from '../version.js';
import { type Clock } from '../clock.js';
import type { Registrar } from './registry/registrar.js';
import type { Registry, RegistrationStatus } from './registry/registry.js';
import type { MeshModel } from './mesh-file/index.js';
import type { CaState } from './ca/state.js';

export interface MeshFileState {
  readonly path: string;
  model: MeshModel;
  loadedAt: number;
  error?: { message: string; at: number };
}

export interface StatusInputs {
  readonly mesh: MeshFileState;
  readonly state: CaState;
  readonly wiring: {
    readonly registry: Registry;
    readonly registrar: Registrar;
    readonly ads: { clients(): readonly unknown[] };
    readonly plainAds: { clients(): readonly unknown[] };
    readonly jwt: { issued(): number; streams(): number };
    readonly source: { readonly renderFailures: ReadonlyMap<string, string>; readonly refusedEndpoints: ReadonlyMap<string, string> };
  };
  readonly listen: string;
  readonly plaintext: string | undefined;
  readonly admin: string;
  readonly clock: Clock;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export type ControlPlaneStatus = ReturnType<typeof buildStatus>;

export function buildStatus(i: StatusInputs) {
  const { mesh, wiring } = i;
  const registrations = wiring.registry.list();
  const clients = [...wiring.ads.clients(), ...wiring.plainAds.clients()].map((c) => {
    const id = (c as { id: string }).id;
    const reg = wiring.registrar.status(id);
    return { ...(c as object), ...(reg && { registration: { addresses: reg.addresses, ...(reg.notRegistered !== undefined && { notRegistered: reg.notRegistered }) } }) };
  });
  return {
    sidecarless: VERSION,
    at: iso(i.clock.now())!,
    listen: { tls: i.listen, ...(i.plaintext !== undefined && { plaintext: i.plaintext }), admin: i.admin },
    meshFile: {
      path: mesh.path,
      version: mesh.model.version,
      loadedAt: iso(mesh.loadedAt)!,
      ...(mesh.error && { rejected: { message: mesh.error.message, at: iso(mesh.error.at)! } }),
    },
    services: mesh.model.services.map((s) => ({
      name: s.name,
      namespace: s.namespace,
      port: s.port,
      protocol: s.protocol,
      endpoints: [
        ...s.endpoints.map((e) => ({ address: e.address, source: 'static' as const })),
        ...registrations.filter((r) => r.service === s.name && r.namespace === s.namespace).map(registered),
      ],
    })),
    clients,
    certificates: i.state.issued().map((c) => ({ ...c })),
    jwtSvids: { issued: wiring.jwt.issued(), bundleStreams: wiring.jwt.streams() },
    inboundNotRendered: [...wiring.source.renderFailures].map(([workload, reason]) => ({ workload, reason })),
    endpointsNotServed: [...wiring.source.refusedEndpoints].map(([endpoint, reason]) => ({ endpoint, reason })),
  };
}

function registered(r: RegistrationStatus) {
  return {
    address: r.address,
    source: 'registered' as const,
    state: r.state,
    identity: r.identity,
    since: iso(r.since)!,
    ...(r.removeAt !== undefined && { removeAt: iso(r.removeAt)! }),
    ...(r.name !== undefined && { name: r.name }),
    ...(r.locality?.zone && { zone: r.locality.zone }),
  };
}
