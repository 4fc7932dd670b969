/** What an xDS control plane shows in /config and `sidecarless stat`: its stream, resources and discovered hosts. Types only. */
import type { AdsStatus } from './ads-events.js';
import type { HostState } from './xds-tree.js';

export interface XdsHostStatus {
  readonly host: string;
  readonly state: HostState['kind'];
  readonly listener?: string;
  readonly service?: string;
  readonly waitingFor?: string;
}

export interface XdsStatus {
  readonly address: string;
  readonly ads: AdsStatus;
  readonly hosts: readonly XdsHostStatus[];
  /** Set when the control plane answered that it serves no ADS (UNIMPLEMENTED): why. */
  readonly unavailable?: string;
}
