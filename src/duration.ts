import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Parses '250ms', '10s', '1.5m', '1h', '2d' (or a number of milliseconds) into milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`invalid duration ${value}: expected milliseconds >= 0`);
    return value;
  }
  const m = DURATION.exec(value.trim());
  if (!m) throw new RangeError(`invalid duration "${value}": expected a number and a unit, like 250ms, 10s, 5m, 1h`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

/** zod schema: a duration string or milliseconds, output in milliseconds. */
export const durationSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
