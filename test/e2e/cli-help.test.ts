// `sidecarless --help`, `--version`, groups alone, unknown commands and options: help on stdout and
// exit 0 when asked; the one error style on stderr and exit 2 when the command line must change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './process.js';
import { assertError, assertNoStack, sidecarless } from './cli-run.js';

const COMMANDS = ['ca init', 'svid issue', 'svid inspect', 'policy check', 'stat', 'demo'];

test('--version prints the package.json version', async () => {
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = await sidecarless(['--version']);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, `${version}\n`, '']);
});

test('--help, -h and help list every command on stdout, exit 0', async () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await sidecarless(args);
    assert.equal(r.code, 0, args.join(' '));
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^sidecarless: the service mesh as a library\n\nusage: sidecarless <command> \[options\]/);
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c} +\\S`, 'm'), c);
    assert.match(r.stdout, /--version/);
  }
});

test('every command and sub-command answers --help and -h with its usage on stdout, exit 0', async () => {
  for (const c of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const r = await sidecarless([...c.split(' '), flag]);
      assert.equal(r.code, 0, `${c} ${flag}: ${r.stderr}`);
      assert.equal(r.stderr, '', `${c} ${flag}`);
      assert.match(r.stdout, new RegExp(`^usage: sidecarless ${c}( |\\n)`), `${c} ${flag}`);
      assert.match(r.stdout, /\n  -h, --help +show this help\n/);
      assert.match(r.stdout, /\nexit status: /);
    }
  }
  // Help wins wherever it is, even after options that would be an error.
  const late = await sidecarless(['svid', 'issue', '--ttl', 'abc', '--bogus', '-h']);
  assert.equal(late.code, 0);
  assert.match(late.stdout, /^usage: sidecarless svid issue --ca DIR --spiffe-id ID --out DIR \[--ttl 1h\] \[--dns NAME\]\.\.\. \[--force\]/);
  const issue = await sidecarless(['help', 'svid', 'issue']);
  assert.equal(issue.code, 0);
  assert.equal(issue.stdout, late.stdout, '"help svid issue" is "svid issue --help"');
  // The demo's internal role options are not advertised.
  const demo = await sidecarless(['demo', '--help']);
  assert.doesNotMatch(demo.stdout, /--role|--delay-ms/);
});

test('a group alone lists its sub-commands on stderr and exits 2 (nothing was done); with --help on stdout, exit 0', async () => {
  const groups: Array<[string, string[]]> = [
    ['ca', ['init']],
    ['svid', ['issue', 'inspect']],
    ['policy', ['check']],
  ];
  for (const [group, subs] of groups) {
    const alone = await sidecarless([group]);
    assertError(alone, 2, 'ERR_SIDECARLESS_USAGE', new RegExp(`^sidecarless: "${group}" needs a command: ${subs.map((s) => `${group} ${s}`).join(', ')} `), group);
    for (const s of subs) assert.match(alone.stderr, new RegExp(`^  ${group} ${s} +\\S`, 'm'));
    for (const flag of ['--help', '-h']) {
      const help = await sidecarless([group, flag]);
      assert.equal(help.code, 0);
      assert.equal(help.stderr, '');
      assert.match(help.stdout, new RegExp(`^usage: sidecarless ${group} <command> \\[options\\]`));
      for (const s of subs) assert.match(help.stdout, new RegExp(`^  ${group} ${s} +\\S`, 'm'));
    }
  }
  const bare = await sidecarless([]);
  assertError(bare, 2, 'ERR_SIDECARLESS_USAGE', /^sidecarless: no command given /, 'no arguments');
  assert.match(bare.stderr, /usage: sidecarless <command>/);
});

test('unknown commands and options: one error line, a suggestion when close, exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['stta'], /unknown command "stta" \(did you mean "stat"\?\)/],
    [['svid', 'isue'], /unknown command "svid isue" \(did you mean "svid issue"\?\)/],
    [['svid', 'inspekt'], /did you mean "svid inspect"/],
    [['--bogus'], /unknown option --bogus before a command/],
    [['ca', 'init', '--trust-domain', 'a.test', '--out', '/tmp/x', '--bogus'], /^sidecarless: unknown option --bogus \[/],
    [['ca', 'init', '--trust-domain', 'a.test', '--otu', '/tmp/x'], /unknown option --otu \(did you mean --out\?\)/],
    [['ca', 'init', '--trust-domain', 'a.test', '--out'], /--out needs a value \(--out DIR\)/],
    [['ca', 'init', '--trust-domain', 'a.test', '--out', '--force'], /--out needs a value/],
    [['ca', 'init', '--trust-domain', 'a.test', '--out='], /--out needs a value, got an empty string/],
    [['ca', 'init', '--trust-domain', 'a.test', '--out', '/tmp/x', '--force=yes'], /--force takes no value/],
    [['ca', 'init', '--trust-domain', 'a.test', '--out', '/tmp/x', '--force', 'yes'], /unexpected argument "yes" \(--force takes no value\)/],
    [['ca', 'init', '--trust-domain', 'a.test', '--trust-domain', 'b.test', '--out', '/tmp/x'], /--trust-domain is given twice/],
    [['ca', 'init', '-t', 'a.test'], /unknown option -t \(options are spelled --name\)/],
    [['ca', 'init'], /--trust-domain and --out are required/],
    [['ca', 'init', '--out', '/tmp/x'], /--trust-domain is required/],
    [['ca', 'init', '--trust-domain', 'Bad.Domain', '--out', '/tmp/x'], /--trust-domain: .*lower case/],
    [['svid', 'issue'], /--ca, --spiffe-id and --out are required/],
    [['svid', 'issue', '--ca', '/tmp', '--spiffe-id', 'spiffe://a.test', '--out', '/tmp/x'], /--spiffe-id: .*names a trust domain, not a workload/],
    [['svid', 'issue', '--ca', '/tmp', '--spiffe-id', 'web', '--out', '/tmp/x'], /--spiffe-id: /],
    [['svid', 'issue', '--ca', '/tmp', '--spiffe-id', 'spiffe://a.test/x', '--out', '/tmp/x', '--dns', 'bad name'], /--dns "bad name" is not a DNS name/],
    [['svid', 'issue', '--ca', '/tmp', '--spiffe-id', 'spiffe://a.test/x', '--out', '/tmp/x', '--dns', '10.1.2.3'], /--dns "10\.1\.2\.3" is an IP address/],
    [['svid', 'inspect', 'certs/'], /unexpected argument "certs\/"/],
    [['stat'], /--admin is required/],
    [['stat', '--admin', '127.0.0.1:1', '--interval', '10ms'], /--interval must be at least 100ms/],
    [['stat', '--admin', '127.0.0.1:1', '--interval', 'soon'], /--interval: invalid duration "soon"/],
    [['stat', '--admin', 'ftp://127.0.0.1:1', '--interval', '100ms'], /the admin endpoint speaks http/],
    [['stat', '--admin', 'http://[::1', '--interval', '100ms'], /is not a URL or host:port/],
    [['demo', '--delay-ms', '3', '--verbose'], /unknown option --verbose/],
  ];
  for (const [args, msg] of cases) {
    const r = await sidecarless(args);
    assertError(r, 2, 'ERR_SIDECARLESS_USAGE', msg, args.join(' '));
    // A command's usage error shows its usage line (a top-level one shows the command list).
    if (args.length > 1 && !['svid isue', 'svid inspekt'].includes(args.slice(0, 2).join(' '))) {
      assert.match(r.stderr, /\nusage: sidecarless \S+/, args.join(' '));
    }
    assertNoStack(r, args.join(' '));
  }
});
