// When the workload's own SVID should have been renewed, and what to say when it was not. Pure:
// SourceCore (source.ts) decides when an event happens; this names the thresholds and the words.

/**
 * The renewal point: 75 % of the SVID's lifetime (notBefore → notAfter of the whole path). Every
 * renewer renews well before it — SPIRE agents (and so spiffe-helper's files) at half-life, the
 * sidecarless dev CA and Istio's CA at 50 % ± 10 % — so an SVID still in use past it means its
 * renewal is stuck, with a quarter of the lifetime (15 min of a 1 h SVID) left to fix it.
 */
export const RENEWAL_POINT_FRACTION = 0.75;

export function renewalPoint(notBefore: number, notAfter: number): number {
  return notBefore + (notAfter - notBefore) * RENEWAL_POINT_FRACTION;
}

/** What a source tells its owner about the life of the SVID it serves. */
export type SvidLifecycleEvent =
  /** The SVID passed its renewal point and no renewal has arrived. Once per SVID. */
  | { readonly kind: 'renewal-overdue'; readonly svid: SvidFacts; readonly renewAt: number; readonly now: number; readonly source: SourceFacts }
  /** The SVID expired with no renewal: the mesh fails closed. Once per SVID. */
  | { readonly kind: 'expired'; readonly svid: SvidFacts; readonly source: SourceFacts }
  /** A new SVID arrived after the previous one was reported overdue or expired. */
  | { readonly kind: 'renewed'; readonly svid: SvidFacts; readonly previous: 'renewal-overdue' | 'expired'; readonly source: SourceFacts };

export interface SvidFacts {
  readonly spiffeId: string;
  readonly serialNumber: string;
  readonly notAfter: number;
}

export interface SourceFacts {
  /** dir, dev-ca, … */
  readonly kind: string;
  /** "identity directory /run/spiffe", … */
  readonly describe: string;
  /** The last refresh error, if any: often the reason the renewal is missing. */
  readonly lastError?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

function inWords(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Where to look, per kind of source. */
function whatToDo(source: SourceFacts): string {
  const hint =
    source.kind === 'dir'
      ? 'Check the process that writes svid.pem there (spiffe-helper and its SPIRE agent, a secret sync, or `sidecarless svid issue`).'
      : source.kind === 'dev-ca'
        ? 'The in-process dev CA could not renew it; see the errors logged before this one.'
        : source.kind === 'workload-api'
          ? `Check the SPIRE agent behind the ${source.describe} (running, and reaching its server?); \`sidecarless svid inspect --workload-api <address>\` shows what it hands out.`
          : `Check the identity source (${source.kind}).`;
  return source.lastError ? `${hint} Last error: ${source.lastError}` : hint;
}

function svidWords(s: SvidFacts): string {
  return `the X.509-SVID for ${s.spiffeId} (serial ${s.serialNumber}, valid until ${iso(s.notAfter)})`;
}

/** The log line for an event: its level and message (each event is emitted once per SVID). */
export function describeLifecycle(e: SvidLifecycleEvent): { level: 'info' | 'warn' | 'error'; message: string } {
  switch (e.kind) {
    case 'renewal-overdue':
      return {
        level: 'warn',
        message:
          `identity: ${svidWords(e.svid)} passed its renewal point (${RENEWAL_POINT_FRACTION * 100} % of its lifetime, at ${iso(e.renewAt)}) ` +
          `and no renewal has arrived from the ${e.source.describe}; it expires in ${inWords(e.svid.notAfter - e.now)}, ` +
          `after which the mesh refuses to serve or call. ${whatToDo(e.source)}`,
      };
    case 'expired':
      return {
        level: 'error',
        message:
          `identity: ${svidWords(e.svid)} has expired and no renewal arrived from the ${e.source.describe}: inbound connections ` +
          `are refused and outbound calls fail (ERR_SIDECARLESS_IDENTITY_UNAVAILABLE) until a valid SVID arrives. ${whatToDo(e.source)}`,
      };
    case 'renewed':
      return {
        level: 'info',
        message:
          `identity: renewed after the previous SVID ${e.previous === 'expired' ? 'had expired' : 'had passed its renewal point'}: ` +
          `now ${svidWords(e.svid)}, from the ${e.source.describe}.`,
      };
  }
}
