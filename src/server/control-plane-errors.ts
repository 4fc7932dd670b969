/** Errors of the embedded control plane process. */
import { SidecarlessError } from '../errors.js';
import { type ListenAddress, formatAddress } from './listen-address.js';

/** A port of the control plane could not be bound. */
export class ControlPlaneListenError extends SidecarlessError {
  constructor(at: ListenAddress, cause: Error) {
    super('ERR_SIDECARLESS_CONTROL_PLANE_LISTEN', `the control plane cannot listen on ${formatAddress(at.host, at.port)}: ${cause.message}: choose another address or port (0 picks a free one), or stop the process that holds it`, { cause });
  }
}
