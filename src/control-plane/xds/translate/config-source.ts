/** The ConfigSource check shared by the Listener (RDS) and the Cluster (EDS). Pure. */
import type { ConfigSource } from '../../../proto/envoy/config/core/v3/config_source.js';
import type { Findings } from './result.js';
import { AGGREGATED_CONFIG_SOURCE, CONFIG_SOURCE, SELF_CONFIG_SOURCE } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

const V2 = 1;

/** A ConfigSource must say ADS (or `self`, the same stream), in API v3 or AUTO. */
export function checkConfigSource(cs: ConfigSource | undefined, f: Findings, at: string): void {
  refuseUnknown(cs, f, at, CONFIG_SOURCE);
  refuseUnknown(cs?.ads, f, `${at}.ads`, AGGREGATED_CONFIG_SOURCE);
  refuseUnknown(cs?.self, f, `${at}.self`, SELF_CONFIG_SOURCE);
  if (cs === undefined) f.refuse(at, 'is required (ads: {})');
  else if (cs.ads === undefined && cs.self === undefined) f.refuse(at, 'must be ads or self: sidecarless fetches everything over its one ADS stream');
  else if (cs.resourceApiVersion === V2 || cs.self?.transportApiVersion === V2) f.refuse(`${at}.resource_api_version`, 'xDS v2 is not supported');
  if (cs?.initialFetchTimeout) f.note(`${at}.initial_fetch_timeout`, 'not used: the mesh waits for a resource by its own bounded discovery timeout');
}

