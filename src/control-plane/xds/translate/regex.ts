/**
 * RE2 (what xDS `safe_regex` means) → a JavaScript RegExp source with the same full-match meaning,
 * or a refusal. Conservative by design: a construct JS would read differently, or that RE2 runs in
 * linear time but a backtracking engine may not, is refused (the resource is NACKed), never guessed.
 *
 * Refused: lookarounds and every `(?…)` but `(?:` (flags, named and atomic groups); backreferences
 * and octal escapes (`\1`, `\k`); `\A \z \Z \Q \E \C \p \P \x{…}` and escapes JS reads as a letter;
 * possessive quantifiers (`a*+`); POSIX classes (`[[:alpha:]]`); a class opening with `]` (literal
 * in RE2, the end in JS); `\b` in a class; counts above 1000 (RE2's limit); a repeated group that
 * itself holds a repetition or an alternation (`(a+)+`, `(a|aa)*`: exponential backtracking in JS);
 * more than two unbounded repetitions (`*`, `+`, `{n,}`, counts over 100: `.*a.*b.*` is cubic);
 * patterns over 1024 characters, non-ASCII or control characters.
 * Rewritten: `.` → `[^\n]` (JS's `.` also excludes `\r`, U+2028, U+2029), `\s` → `[\t\n\f\r ]` and
 * `\S` → `[^\t\n\f\r ]` (RE2's are ASCII; JS's include Unicode spaces and `\v`). Pure.
 */
export const MAX_REGEX_LENGTH = 1024;
const MAX_REPEAT = 1000;
/** A repetition above this many counts as unbounded for MAX_WIDE_REPEATS. */
const WIDE_REPEAT = 100;
/** Unbounded repetitions per pattern: each one multiplies a backtracking engine's worst case by the input length. */
export const MAX_WIDE_REPEATS = 2;

export type RegexCheck = { readonly ok: true; readonly source: string } | { readonly ok: false; readonly message: string };

const SAME_ESCAPES = new Set(['d', 'D', 'w', 'W', 'n', 'r', 't', 'f', 'v']);
const RE2_SPACE = '\\t\\n\\f\\r ';

interface Group {
  repeats: boolean;
  alternates: boolean;
}

/** One escape (`\` at `i`): the JS text and how many characters it used, or a refusal. */
function escape(p: string, i: number, inClass: boolean): { text: string; used: number } | string {
  const c = p[i + 1];
  if (c === undefined) return 'ends with a lone backslash';
  if (SAME_ESCAPES.has(c)) return { text: `\\${c}`, used: 2 };
  if (c === 'b' || c === 'B') return inClass ? `\\${c} inside a class means backspace in JS, an error in RE2` : { text: `\\${c}`, used: 2 };
  if (c === 's') return { text: inClass ? RE2_SPACE : `[${RE2_SPACE}]`, used: 2 };
  if (c === 'S') return inClass ? '\\S inside a class has no portable form' : { text: `[^${RE2_SPACE}]`, used: 2 };
  if (c === 'x') return /^[0-9A-Fa-f]{2}$/.test(p.slice(i + 2, i + 4)) ? { text: p.slice(i, i + 4), used: 4 } : '\\x must be followed by two hex digits (RE2\'s \\x{…} is not JS)';
  if (c >= '0' && c <= '9') return `\\${c}: backreferences and octal escapes are refused (RE2 has no backreferences; JS reads \\${c} either way)`;
  if (/[A-Za-z]/.test(c)) return `\\${c} means something else (or nothing) in JavaScript: refused`;
  return { text: `\\${c}`, used: 2 };
}

/** A character class starting at `i` (`[`): its JS text and length, or a refusal. */
function charClass(p: string, i: number): { text: string; used: number } | string {
  let j = i + 1;
  let out = '[';
  if (p[j] === '^') (out += '^'), j++;
  if (p[j] === ']') return 'a class opening with "]" is a literal "]" in RE2 but an empty class in JS';
  while (j < p.length && p[j] !== ']') {
    if (p[j] === '[' && p[j + 1] === ':') return 'POSIX classes ([:alpha:]) are not JS';
    if (p[j] === '\\') {
      if (/[dDwWsS]/.test(p[j + 1] ?? '') && (out.endsWith('-') && out.length > 2 ? true : p[j + 2] === '-' && p[j + 3] !== ']')) {
        return `a range with a class escape ("${p.slice(j, j + 3)}") is an error in RE2 but literal in JS`;
      }
      const e = escape(p, j, true);
      if (typeof e === 'string') return e;
      out += e.text;
      j += e.used;
    } else out += p[j++];
  }
  if (j >= p.length) return 'unterminated character class';
  return { text: `${out}]`, used: j - i + 1 };
}

/** A `{n}`, `{n,}` or `{n,m}` repetition at `i` (length, and whether it may repeat more than once), null when `{` is a literal, or a refusal. */
function repeatAt(p: string, i: number): { len: number; multi: boolean; wide: boolean } | null | string {
  const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i, i + 16));
  if (!m) return null;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
  if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) return `repetition counts above ${MAX_REPEAT} are refused by RE2`;
  return { len: m[0].length, multi: max > 1, wide: max > WIDE_REPEAT };
}

export function re2ToJs(pattern: string): RegexCheck {
  if (pattern.length > MAX_REGEX_LENGTH) return { ok: false, message: `longer than ${MAX_REGEX_LENGTH} characters` };
  if (/[^\x20-\x7e]/.test(pattern)) return { ok: false, message: 'holds a non-ASCII or control character (RE2 matches code points, JS code units)' };
  const groups: Group[] = [{ repeats: false, alternates: false }];
  let out = '';
  let wideCount = 0;
  let lastRisky = false; // the atom just emitted is a group holding a repetition or alternation
  const fail = (message: string): RegexCheck => ({ ok: false, message });
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    let quantLen = 0;
    let multi = c === '*' || c === '+';
    let wide = multi;
    if (multi || c === '?') quantLen = 1;
    else if (c === '{') {
      const n = repeatAt(pattern, i);
      if (typeof n === 'string') return fail(n);
      if (n) (quantLen = n.len), (multi = n.multi), (wide = n.wide);
    }
    if (quantLen > 0) {
      if (wide && ++wideCount > MAX_WIDE_REPEATS) {
        return fail(`more than ${MAX_WIDE_REPEATS} unbounded repetitions: a backtracking engine's worst case grows with the input length to that power (".*a.*b.*c" on a 8 KiB path takes minutes in JS; RE2 is linear)`);
      }
      if (lastRisky && multi) return fail('a repeated group holds a repetition or an alternation: it may backtrack exponentially in JS (RE2 is linear)');
      const after = pattern[i + quantLen];
      if (after === '+') return fail('possessive quantifiers are not RE2 or JS');
      groups[groups.length - 1]!.repeats = true;
      out += pattern.slice(i, i + quantLen);
      i += quantLen;
      if (after === '?') (out += '?'), i++;
      lastRisky = false;
      continue;
    }
    lastRisky = false;
    if (c === '\\') {
      const e = escape(pattern, i, false);
      if (typeof e === 'string') return fail(e);
      out += e.text;
      i += e.used;
    } else if (c === '[') {
      const k = charClass(pattern, i);
      if (typeof k === 'string') return fail(k);
      out += k.text;
      i += k.used;
    } else if (c === '(') {
      if (pattern[i + 1] === '?' && pattern[i + 2] !== ':') return fail(`"${pattern.slice(i, i + 4)}": lookarounds, flags, named and atomic groups are refused; only (…) and (?:…)`);
      groups.push({ repeats: false, alternates: false });
      out += pattern[i + 1] === '?' ? '(?:' : '(';
      i += pattern[i + 1] === '?' ? 3 : 1;
    } else if (c === ')') {
      const g = groups.pop();
      if (!g || groups.length === 0) return fail('unbalanced ")"');
      if (g.repeats) groups[groups.length - 1]!.repeats = true;
      lastRisky = g.repeats || g.alternates;
      out += ')';
      i++;
    } else if (c === '|') {
      groups[groups.length - 1]!.alternates = true;
      out += '|';
      i++;
    } else if (c === '.') {
      out += '[^\\n]';
      i++;
    } else if (c === '{' || c === '}') {
      out += `\\${c}`;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  if (groups.length !== 1) return fail('unbalanced "("');
  try {
    new RegExp(`^(?:${out})$`);
  } catch (e) {
    return fail(`not a valid regular expression: ${(e as Error).message}`);
  }
  return { ok: true, source: out };
}

/** A JS RegExp source matching exactly `s` (ASCII letters either case when `ignoreCase`, as Envoy's ignore_case). */
export function literalSource(s: string, ignoreCase = false): string {
  let out = '';
  for (const ch of s) {
    if (ignoreCase && /[A-Za-z]/.test(ch)) out += `[${ch.toLowerCase()}${ch.toUpperCase()}]`;
    else if (/[\\^$.|?*+()[\]{}/-]/.test(ch)) out += `\\${ch}`;
    else out += ch;
  }
  return out;
}
