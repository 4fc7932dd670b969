// RE2 → JS: what is accepted matches as RE2 would (full match), what JS reads differently or may
// backtrack exponentially is refused with a message naming the construct.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { literalSource, re2ToJs } from '../../../../src/control-plane/xds/translate/regex.js';

const full = (pattern: string) => {
  const r = re2ToJs(pattern);
  assert.ok(r.ok, `${pattern}: ${r.ok ? '' : r.message}`);
  const re = new RegExp(`^(?:${r.source})$`);
  return (s: string) => re.test(s);
};
const refused = (pattern: string, why: RegExp) => {
  const r = re2ToJs(pattern);
  assert.ok(!r.ok, `${pattern} was accepted as ${r.ok ? r.source : ''}`);
  assert.match(r.message, why, pattern);
};

test('the RE2 forms both engines read alike are accepted, as full matches', () => {
  const m = full('/users/[0-9]+(/orders/\\d{1,6})?');
  assert.ok(m('/users/12') && m('/users/12/orders/123456'));
  assert.ok(!m('/users/12/orders/1234567') && !m('/users/12x') && !m('x/users/1'));
  const alt = full('/a|/b');
  assert.ok(alt('/a') && alt('/b') && !alt('/ab'), 'alternation is inside the full-match anchors');
  assert.ok(full('(?:/v1)?/x\\.y')('/x.y') && !full('(?:/v1)?/x\\.y')('/xzy'));
  assert.ok(full('a.*?b')('a--b'));
  assert.ok(full('[^/]+\\w\\W\\D')('ab_ 1'.replace('1', 'x')));
  assert.ok(full('a{2}')('aa') && !full('a{2}')('aaa'));
  assert.ok(full('a{,2}')('a{,2}'), '{,n} is a literal in RE2 and in JS');
  assert.ok(full('\\x41\\-\\/')('A-/'));
});

test('"." and \\s keep RE2\'s meaning (rewritten), not JS\'s', () => {
  const dot = full('a.b');
  assert.ok(dot('a\rb'), 'RE2 "." matches \\r; JS "." does not');
  assert.ok(!dot('a\nb'));
  const s = full('a\\sb');
  assert.ok(s('a b') && s('a\tb'));
  assert.ok(!s('a\u00a0b') && !s('a\u2028b') && !s('a\vb'), 'RE2 \\s is ASCII [\\t\\n\\f\\r ]');
  assert.ok(full('a\\Sb')('axb') && !full('a\\Sb')('a b'));
  assert.ok(full('[\\sx]+')(' x\t'));
});

test('constructs JS reads differently are refused, each with its reason', () => {
  refused('/a(?=b)', /lookarounds/);
  refused('/a(?!b)', /lookarounds/);
  refused('(?<=a)b', /lookarounds/);
  refused('(?<!a)b', /lookarounds/);
  refused('(?i)abc', /flags/);
  refused('(?P<id>\\d+)', /named/);
  refused('(?>a+)b', /atomic/);
  refused('(a)\\1', /backreference/);
  refused('\\0', /octal/);
  refused('(?<n>a)\\k<n>', /lookarounds, flags, named/);
  refused('a\\Z', /\\Z/);
  refused('\\Aabc\\z', /\\A/);
  refused('\\Qa.b\\E', /\\Q/);
  refused('\\pL+', /\\p/);
  refused('\\p{Greek}', /\\p/);
  refused('\\C', /\\C/);
  refused('\\x{41}', /two hex digits/);
  refused('\\e', /\\e/);
  refused('a*+', /possessive/);
  refused('a++', /possessive/);
  refused('a{2}+', /possessive/);
  refused('[[:alpha:]]+', /POSIX/);
  refused('[]a]', /opening with "\]"/);
  refused('[^]a]', /opening with "\]"/);
  refused('[\\b]', /backspace/);
  refused('[\\S]', /portable/);
  refused('a{1001}', /1000/);
  refused('a{2,5000}', /1000/);
  refused('caf\u00e9', /non-ASCII/);
  refused('a\nb', /control/);
  refused('x'.repeat(1025), /1024/);
  refused('(a', /unbalanced/);
  refused('a)', /unbalanced/);
  refused('a\\', /lone backslash/);
  refused('*a', /not a valid regular expression/);
  refused('[a', /unterminated/);
  refused('[a-\\d]', /range with a class escape/);
  refused('[\\w-z]', /range with a class escape/);
  assert.ok(full('[-\\d]+')('-1') && full('[\\d-]+')('1-'), 'a leading or trailing "-" is a literal in both');
});

test('repeated groups that may backtrack exponentially are refused; plain repeats are not', () => {
  refused('(a+)+$', /backtrack/);
  refused('(a*)*', /backtrack/);
  refused('(?:a|aa)*b', /backtrack/);
  refused('((ab)*c)+', /backtrack/);
  refused('(x+x+)+y', /backtrack/);
  refused('.*.*.*x', /more than 2 unbounded repetitions/);
  refused('.*a.+b[0-9]{1,200}', /more than 2 unbounded/);
  assert.ok(full('/api/.*/v[0-9]+')('/api/x/v12'), 'two are accepted');
  assert.ok(full('a{1,100}b{1,100}c{1,100}d+')('abcd'), 'counts up to 100 do not count as unbounded');
  const twoStars = full('.*.*x');
  const t0 = performance.now();
  assert.ok(!twoStars('a'.repeat(8192)));
  assert.ok(performance.now() - t0 < 2000, 'the worst accepted pattern stays quadratic');
  assert.ok(full('(?:ab)+c')('ababc'));
  assert.ok(full('(v1|v2)/[a-z]+')('v2/abc'));
  const started = performance.now();
  assert.ok(!full('(?:ab)+c')('ab'.repeat(5000)));
  assert.ok(performance.now() - started < 500);
});

test('literalSource escapes every metacharacter and folds ASCII case only when asked', () => {
  const lit = '/a.b*c?(d)[e]{f}|g^h$i\\j+k/-';
  assert.ok(new RegExp(`^(?:${literalSource(lit)})$`).test(lit));
  assert.ok(!new RegExp(`^(?:${literalSource('/a.b')})$`).test('/axb'));
  const ci = new RegExp(`^(?:${literalSource('/Api-V1', true)})$`);
  assert.ok(ci.test('/api-v1') && ci.test('/API-V1') && !ci.test('/api_v1'));
});
