/**
 * The xDS section of `sidecarless stat`: from the admin endpoint's `/config` (its `xds` part, present
 * when the mesh has a `controlPlane`), the ADS stream's state, every resource with its version and
 * ACK/NACK state, the last NACK of each type with its error, and the discovered hosts. Text only;
 * the shapes are the admin endpoint's (control-plane/xds/xds-control-plane.ts XdsStatus).
 */
import type { XdsStatus } from '../control-plane/xds/xds-status.js';

const MAX_ERROR = 300;

function cut(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((cells) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** The resource rows of one type: in force (ACKED), requested, rejected, known not to exist. */
function resourceRows(t: XdsStatus['ads']['types'][number]): string[][] {
  const rows: string[][] = [];
  const state = t.nacked ? 'ACKED (newer NACKED)' : 'ACKED';
  for (const r of t.resources) rows.push([t.type, cut(r.name, 120), r.version || '""', state]);
  for (const n of t.pending) rows.push([t.type, cut(n, 120), '-', 'REQUESTED']);
  for (const n of t.rejected) rows.push([t.type, cut(n, 120), t.lastNack?.version ?? '-', 'NACKED']);
  for (const n of t.doesNotExist) rows.push([t.type, cut(n, 120), '-', 'DOES NOT EXIST']);
  return rows;
}

export function renderXds(x: XdsStatus, now: number = Date.now()): string {
  const s = x.ads.stream;
  const retry = s.retryAt !== undefined ? `, retrying in ${Math.max(0, Math.round((s.retryAt - now) / 1000))} s` : '';
  if (x.unavailable !== undefined) return `XDS ${x.address}: not served (${cut(x.unavailable, MAX_ERROR)}): no services, routes or inbound policy from it\n`;
  const out = [`XDS ${x.address}: stream ${s.state}${s.failures > 0 ? ` (${s.failures} failed since the last ACK${retry})` : ''}${s.lastError ? `; last error: ${cut(s.lastError, MAX_ERROR)}` : ''}`];
  const rows = x.ads.types.flatMap(resourceRows);
  if (rows.length === 0) out.push('  no resources requested yet (the first request to a host no service holds asks for its Listener)');
  else out.push(...table(['TYPE', 'RESOURCE', 'VERSION', 'STATE'], rows).map((l) => `  ${l}`));
  for (const t of x.ads.types) {
    if (t.lastNack) out.push(`  last ${t.type} NACK (version ${JSON.stringify(t.lastNack.version)}${t.nacked ? ', still in force: the previous version serves' : ', since replaced by a good one'}): ${cut(t.lastNack.message, MAX_ERROR)}`);
  }
  if (x.hosts.length > 0) {
    out.push('', 'DISCOVERED HOSTS');
    const hostRows = x.hosts.map((h) => [h.host, h.state, h.service ?? h.listener ?? '-', h.waitingFor ? `waiting for ${cut(h.waitingFor, 160)}` : '']);
    out.push(...table(['HOST', 'STATE', 'SERVICE', ''], hostRows).map((l) => `  ${l}`));
  }
  return `${out.join('\n')}\n`;
}
