/**
 * A peer's string as sidecarless's messages show it. A Workload API server, a CA or whoever
 * presents a token picks these bytes; our errors end up in logs and on terminals. Control
 * characters (C0, DEL, C1 — U+009B is a terminal's CSI — and the JSON-breaking U+2028/U+2029) are
 * written as `\uXXXX`, so a log line stays one line and no terminal sequence of the peer's runs;
 * long strings are clipped (the peer picks the size too). Pure.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s);

/** The string as is, control characters escaped, at most `max` characters (then `…`). */
export function printable(s: string, max = 300): string {
  return clip(String(s), max).replace(CONTROL, escape);
}

/** The string JSON-quoted (`"a\nb"`), C1 controls escaped too, at most `max` characters inside the quotes. */
export function quoted(s: string, max = 120): string {
  return JSON.stringify(clip(String(s), max)).replace(CONTROL, escape);
}
