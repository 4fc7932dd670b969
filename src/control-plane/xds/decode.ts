/**
 * The ADS session's decoder: one resource's bytes → the project's codec → its translator, so a
 * response is accepted only when every resource in it is something the mesh can honour (anything
 * else is a NACK whose error_detail names the resource, the field and why). The values cached per
 * type are the translators' typed results: ListenerSpec (or InboundListener for the mesh's own
 * inbound Listener), RouteTable, ClusterSpec, and the endpoints of a ClusterLoadAssignment (their
 * identity filled in later, from the Cluster that names them). Pure.
 */
import { ClusterCodec } from '../../proto/envoy/config/cluster/v3/cluster.js';
import { ClusterLoadAssignmentCodec } from '../../proto/envoy/config/endpoint/v3/endpoint.js';
import { ListenerCodec, type Listener } from '../../proto/envoy/config/listener/v3/listener.js';
import { RouteConfigurationCodec } from '../../proto/envoy/config/route/v3/route.js';
import { type ServiceEndpoint, type ServiceSettings } from '../../outbound/settings.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
  ResourceRejection,
  type Any,
  type Decode,
  type Decoded,
} from './discovery.js';
import { translateCluster } from './translate/cluster.js';
import { translateEndpoints } from './translate/endpoints.js';
import { INBOUND_PREFIX } from './translate/inbound.js';
import { translateListener } from './translate/listener.js';
import { formatReasons, type Translation } from './translate/result.js';
import { translateRouteConfiguration } from './translate/route.js';


/** The endpoints of one ClusterLoadAssignment: identity is '' until the Cluster that names it supplies one. */
export interface EndpointSet {
  readonly clusterName: string;
  readonly endpoints: readonly ServiceEndpoint[];
}

export interface DecoderOptions {
  /** What a Cluster's settings start from: the mesh's defaults. */
  readonly baseSettings: ServiceSettings;
  /** The translator for the mesh's inbound Listener; without one such a Listener is refused. */
  readonly inbound?: (l: Listener) => Translation<unknown>;
}

/** The decoded resource, or a ResourceRejection naming it when its translation has reasons. */
function accept<T>(name: string, t: Translation<T>): Decoded {
  if (!t.ok) throw new ResourceRejection(name, formatReasons(t.reasons).replace(/\n/g, '; '));
  return { name, value: t.value };
}

function decoded<T>(codec: { decode(b: Uint8Array): T }, any: Any, what: string): T {
  try {
    return codec.decode(any.value);
  } catch (e) {
    throw new Error(`not a valid ${what}: ${(e as Error).message}`);
  }
}

export function xdsDecoder(o: DecoderOptions): Decode {
  return (typeUrl, any) => {
    switch (typeUrl) {
      case LISTENER_TYPE_URL: {
        const l = decoded(ListenerCodec, any, 'Listener');
        if (l.name.startsWith(INBOUND_PREFIX)) {
          if (!o.inbound) throw new ResourceRejection(l.name, 'inbound Listeners are not supported by this client');
          return accept(l.name, o.inbound(l));
        }
        return accept(l.name, translateListener(l));
      }
      case ROUTE_CONFIGURATION_TYPE_URL: {
        const rc = decoded(RouteConfigurationCodec, any, 'RouteConfiguration');
        return accept(rc.name, translateRouteConfiguration(rc));
      }
      case CLUSTER_TYPE_URL: {
        const c = decoded(ClusterCodec, any, 'Cluster');
        return accept(c.name, translateCluster(c, o.baseSettings));
      }
      case CLUSTER_LOAD_ASSIGNMENT_TYPE_URL: {
        const cla = decoded(ClusterLoadAssignmentCodec, any, 'ClusterLoadAssignment');
        const t = translateEndpoints(cla, '');
        const value: Translation<EndpointSet> = t.ok ? { ok: true, value: { clusterName: cla.clusterName, endpoints: t.value }, notes: t.notes } : t;
        return accept(cla.clusterName, value);
      }
      default:
        throw new Error(`type ${typeUrl} is not one this client asks for`);
    }
  };
}
