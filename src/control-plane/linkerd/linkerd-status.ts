/** What `stats().linkerd` and admin `/config` show of a Linkerd control plane's streams (linkerd-control-plane.ts). Types only. */
export interface LinkerdStatus {
  readonly destination: string;
  readonly authorities: ReadonlyArray<{ readonly authority: string; readonly hosts: readonly string[]; readonly state: 'found' | 'absent' | 'pending'; readonly waitingFor?: string; readonly lastError?: string }>;
  readonly destinations: ReadonlyArray<{ readonly path: string; readonly status: string; readonly endpoints: number; readonly refused: number; readonly lastError?: string }>;
  readonly ports: ReadonlyArray<{ readonly port: number; readonly state: 'pending' | 'present'; readonly lastError?: string }>;
}

