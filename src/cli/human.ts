/** Durations and times written for a person: "59m 58s", "3d 4h", ISO times without milliseconds. Pure. */

const UNITS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** The two largest non-zero units, rounded down: 90061000 → "1d 1h"; under a second → "0s". */
export function humanDuration(ms: number): string {
  let rest = Math.max(0, Math.floor(Math.abs(ms)));
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`);
    if (parts.length === 2) break;
  }
  const shown = parts.filter((p, i) => i === 0 || !p.startsWith('0'));
  return shown.length ? shown.join(' ') : '0s';
}

/**
 * A duration in one unit that fits in `ms` and loses at most 10 % of it, for a suggested --ttl:
 * 1h 59m 58s → "119m", 364d 23h → "364d", 29m 59s → "29m". Undefined under a second.
 */
export function fittingDuration(ms: number): string | undefined {
  for (const [unit, size] of UNITS) {
    const n = Math.floor(ms / size);
    if (n >= 1 && n * size >= 0.9 * ms) return `${n}${unit}`;
  }
  return ms >= 1000 ? `${Math.floor(ms / 1000)}s` : undefined;
}

/** ISO 8601 in UTC, without the milliseconds X.509 times do not have. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
