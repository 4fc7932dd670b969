// The one argument parser of every command, the help made from the same declaration, and the
// small formatting helpers: pure, in process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError, closest, defineCommand, helpText, parse, usageLine, wantsHelp } from '../../src/cli/args.js';
import { fittingDuration, humanDuration, isoTime } from '../../src/cli/human.js';

const cmd = defineCommand({
  name: 'thing do',
  summary: 'does a thing',
  options: {
    out: { type: 'string', required: true, value: 'DIR', help: 'where' },
    ttl: { type: 'string', value: '1h', help: 'how long' },
    dns: { type: 'string', multiple: true, value: 'NAME', help: 'names' },
    force: { type: 'boolean', help: 'replace' },
    role: { type: 'string', hidden: true, help: 'internal' },
  },
  run: async () => 0,
});

const fails = (args: string[], message: RegExp) =>
  assert.throws(() => parse(args, cmd.options), (e: unknown) => e instanceof UsageError && e.code === 'ERR_SIDECARLESS_USAGE' && message.test(e.message), args.join(' '));

test('values: --name value, --name=value, booleans, repeated options in order, dash-led values', () => {
  assert.deepEqual(parse(['--out', 'd', '--ttl=2h', '--dns', 'a', '--dns=b', '--force'], cmd.options), { out: 'd', ttl: '2h', dns: ['a', 'b'], force: true });
  assert.deepEqual(parse(['--out', 'd', '--ttl', '-1s'], cmd.options), { out: 'd', ttl: '-1s' }, 'a value may start with one dash');
  assert.deepEqual(parse(['--out=a=b'], cmd.options), { out: 'a=b' });
  assert.deepEqual(parse(['--out', 'd', '--role', 'x'], cmd.options), { out: 'd', role: 'x' }, 'hidden options parse');
});

test('errors name the option and what to do', () => {
  fails([], /^--out is required$/);
  fails(['--out'], /^--out needs a value \(--out DIR\)$/);
  fails(['--out', '--force'], /^--out needs a value/);
  fails(['--out', ''], /^--out needs a value, got an empty string$/);
  fails(['--out', ' '], /empty string/);
  fails(['--out', 'a', '--out', 'b'], /^--out is given twice$/);
  fails(['--out', 'a', '--force=1'], /^--force takes no value$/);
  fails(['--out', 'a', '--force', 'yes'], /^unexpected argument "yes" \(--force takes no value\)$/);
  fails(['--out', 'a', 'extra'], /^unexpected argument "extra"$/);
  fails(['--out', 'a', '--tll', '1h'], /^unknown option --tll \(did you mean --ttl\?\)$/);
  fails(['--out', 'a', '--rol', 'x'], /^unknown option --rol$/);
  fails(['--out', 'a', '--zzzzzz'], /^unknown option --zzzzzz$/);
  fails(['-o', 'a'], /^unknown option -o \(options are spelled --name\)$/);
  fails(['--', 'a'], /^unexpected argument "--"$/);
  assert.throws(() => parse([], { a: { type: 'string', required: true, help: '' }, b: { type: 'string', required: true, help: '' }, c: { type: 'string', required: true, help: '' } }), /^UsageError: --a, --b and --c are required$/);
});

test('help: usage line from the declaration (required first, hidden never), -h/--help anywhere', () => {
  assert.equal(usageLine(cmd), 'usage: sidecarless thing do --out DIR [--ttl 1h] [--dns NAME]... [--force]');
  const help = helpText(cmd);
  assert.match(help, /^usage: sidecarless thing do /);
  assert.match(help, /\n  --out DIR   \(required\) where\n/);
  assert.match(help, /\n  -h, --help  show this help\n/);
  assert.doesNotMatch(help, /--role/);
  assert.match(help, /\nexit status: 0 done, 1 failed, 2 usage error$/);
  assert.ok(wantsHelp(['--out', 'x', '-h']));
  assert.ok(wantsHelp(['--help']));
  assert.ok(!wantsHelp(['--out', 'x', '--helpful']));
});

test('closest: small edits only', () => {
  assert.equal(closest('stta', ['ca', 'svid', 'policy', 'stat', 'demo']), 'stat');
  assert.equal(closest('issu', ['issue', 'inspect']), 'issue');
  assert.equal(closest('frobnicate', ['ca', 'svid', 'policy', 'stat', 'demo']), undefined);
});

test('durations and times for people', () => {
  assert.equal(humanDuration(0), '0s');
  assert.equal(humanDuration(999), '0s');
  assert.equal(humanDuration(59_000), '59s');
  assert.equal(humanDuration(3_600_000), '1h');
  assert.equal(humanDuration(3_600_000 + 59 * 60_000 + 58_000), '1h 59m');
  assert.equal(humanDuration(90_061_000), '1d 1h');
  assert.equal(humanDuration(86_400_000 + 5_000), '1d', 'a zero second unit is not shown');
  assert.equal(fittingDuration(7_198_000), '119m');
  assert.equal(fittingDuration(364 * 86_400_000 + 23 * 3_600_000), '364d');
  assert.equal(fittingDuration(29 * 60_000 + 59_000), '29m');
  assert.equal(fittingDuration(1_500), '1s');
  assert.equal(fittingDuration(500), undefined);
  assert.equal(isoTime(Date.UTC(2030, 0, 2, 3, 4, 5)), '2030-01-02T03:04:05Z');
});
