// SPIFFE_ENDPOINT_SOCKET and identity.workloadApi.socket, parsed strictly (SPIFFE_Workload_Endpoint.md
// §4): unix:///absolute/path or tcp://<IP>:<port>, nothing else, each refusal saying why and what to
// write; and how createMesh's options report a bad one (the option path, or the variable).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { WorkloadApiAddressError, parseWorkloadApiAddress } from '../../src/sources/workload-api-address.js';

const GOOD: Array<[string, { kind: 'unix' | 'tcp'; where: string; target: string }]> = [
  ['unix:///run/spire/sockets/agent.sock', { kind: 'unix', where: '/run/spire/sockets/agent.sock', target: 'unix:///run/spire/sockets/agent.sock' }],
  ['unix:///tmp/spire-agent/public/api.sock', { kind: 'unix', where: '/tmp/spire-agent/public/api.sock', target: 'unix:///tmp/spire-agent/public/api.sock' }],
  ['unix:///a%20b/agent.sock', { kind: 'unix', where: '/a b/agent.sock', target: 'unix:///a b/agent.sock' }],
  ['tcp://127.0.0.1:8081', { kind: 'tcp', where: '127.0.0.1:8081', target: 'ipv4:127.0.0.1:8081' }],
  ['tcp://10.0.0.9:1', { kind: 'tcp', where: '10.0.0.9:1', target: 'ipv4:10.0.0.9:1' }],
  ['tcp://[::1]:65535', { kind: 'tcp', where: '[::1]:65535', target: 'ipv6:[::1]:65535' }],
];

const BAD: Array<[string, RegExp]> = [
  ['', /it is empty/],
  ['   ', /it is empty/],
  [' unix:///a.sock', /leading or trailing spaces/],
  ['/run/spire/agent.sock', /a bare path needs the unix:\/\/ scheme \(unix:\/\/\/run\/spire\/agent\.sock\)/],
  ['unix:/run/agent.sock', /starts with unix:\/\/ and an empty authority/],
  ['unix:agent.sock', /starts with unix:\/\/ and an empty authority/],
  ['unix://agent.sock', /"agent\.sock" sits where the authority is/],
  ['unix://host/run/agent.sock', /"host" sits where the authority is/],
  ['unix://', /the socket path is missing/],
  ['unix:///', /must name a socket file/],
  ['unix:///run/spire/', /must name a socket file/],
  ['unix:///run/agent.sock?x=1', /a query or fragment is not allowed/],
  ['unix:///run/agent.sock#frag', /a query or fragment is not allowed/],
  ['unix:///run/%zz.sock', /malformed percent-encoding/],
  ['unix:///run/%00.sock', /NUL byte/],
  ['tcp:127.0.0.1:8081', /tcp:\/\/<IP>:<port>/],
  ['tcp://localhost:8081', /"localhost" is not an IP literal/],
  ['tcp://spire-agent.svc:8081', /is not an IP literal/],
  ['tcp://127.0.0.1', /IP literal followed by :port/],
  ['tcp://127.0.0.1:', /IP literal followed by :port/],
  ['tcp://127.0.0.1:0', /port 0 is out of range/],
  ['tcp://127.0.0.1:65536', /port 65536 is out of range/],
  ['tcp://127.0.0.1:8081/path', /a tcp address has no path/],
  ['tcp://user@127.0.0.1:8081', /user information is not allowed/],
  ['tcp://::1:8081', /the host must be an IP literal followed by :port/],
  ['tcp://[127.0.0.1]:8081', /an IPv4 literal goes without brackets: tcp:\/\/127\.0\.0\.1:port/],
  ['tcp://[fe80::1%eth0]:8081', /an IPv6 zone \(%interface\) is not allowed/],
  ['tcp://127.1:8081', /"127\.1" is not an IP literal/],
  ['http://127.0.0.1:8081', /the scheme must be unix or tcp/],
  ['dns:///spire:8081', /the scheme must be unix or tcp/],
  ['UNIX:///run/agent.sock', /the scheme must be unix or tcp/],
];

test('good addresses: the kind, where, and the grpc-js target (no resolver that could look a name up)', () => {
  for (const [uri, want] of GOOD) {
    const a = parseWorkloadApiAddress(uri);
    assert.deepEqual({ kind: a.kind, where: a.where, target: a.target }, want, uri);
    assert.equal(a.uri, uri);
  }
});

test('bad addresses: refused with the reason and the forms to write', () => {
  for (const [uri, why] of BAD) {
    assert.throws(
      () => parseWorkloadApiAddress(uri),
      (e: unknown) => {
        assert.ok(e instanceof WorkloadApiAddressError, `${JSON.stringify(uri)}: ${String(e)}`);
        assert.match(e.message, why, JSON.stringify(uri));
        assert.match(e.message, /write unix:\/\/\/absolute\/path\/to\/agent\.sock or tcp:\/\/<IP>:<port>/);
        return true;
      },
    );
  }
});

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e;
  }
  assert.fail('no ConfigError');
}

test('identity.workloadApi.socket: a bad one is a ConfigError naming the option', () => {
  const e = configError(() => resolveConfig({ service: 'a', identity: { workloadApi: { socket: 'unix://agent.sock' } } }, {}));
  assert.equal(e.code, 'ERR_SIDECARLESS_CONFIG_INVALID');
  assert.equal(e.issues[0]!.path, 'identity.workloadApi.socket');
  assert.match(e.message, /identity\.workloadApi\.socket.*"agent\.sock" sits where the authority is/);
});

test('SPIFFE_ENDPOINT_SOCKET: a bad one is a ConfigError naming the variable', () => {
  const e = configError(() => resolveConfig({ service: 'a' }, { SPIFFE_ENDPOINT_SOCKET: 'tcp://localhost:8081' }));
  assert.deepEqual(
    e.issues.map((i) => ({ path: i.path, env: (i as { env?: string }).env })),
    [{ path: 'identity.workloadApi.socket', env: 'SPIFFE_ENDPOINT_SOCKET' }],
  );
  assert.match(e.message, /identity\.workloadApi\.socket \(from SPIFFE_ENDPOINT_SOCKET\).*"localhost" is not an IP literal/);
});

test('which identity: explicit > SIDECARLESS_IDENTITY_DIR > SPIFFE_ENDPOINT_SOCKET > dev CA; the socket falls back to the variable', () => {
  const sock = 'unix:///run/spire/sockets/agent.sock';
  assert.deepEqual(resolveConfig({ service: 'a' }, { SPIFFE_ENDPOINT_SOCKET: sock }).identity, { workloadApi: { socket: sock } });
  assert.deepEqual(resolveConfig({ service: 'a' }, { SPIFFE_ENDPOINT_SOCKET: sock, SIDECARLESS_IDENTITY_DIR: '/run/x' }).identity, { dir: '/run/x' });
  assert.deepEqual(resolveConfig({ service: 'a', identity: { dir: '/mine' } }, { SPIFFE_ENDPOINT_SOCKET: sock }).identity, { dir: '/mine' });
  assert.equal(resolveConfig({ service: 'a' }, { SPIFFE_ENDPOINT_SOCKET: '' }).identity, undefined);
  assert.equal(resolveConfig({ service: 'a' }, {}).identity, undefined);
  assert.deepEqual(resolveConfig({ service: 'a', identity: { workloadApi: { hint: 'x' } } }, { SPIFFE_ENDPOINT_SOCKET: sock }).identity, {
    workloadApi: { hint: 'x', socket: sock },
  });
  // An explicit socket wins over the variable.
  assert.deepEqual(resolveConfig({ service: 'a', identity: { workloadApi: { socket: 'tcp://127.0.0.1:1' } } }, { SPIFFE_ENDPOINT_SOCKET: sock }).identity, {
    workloadApi: { socket: 'tcp://127.0.0.1:1' },
  });
});

test('identity.workloadApi with no socket and no SPIFFE_ENDPOINT_SOCKET says both ways to give one', () => {
  const e = configError(() => resolveConfig({ service: 'a', identity: { workloadApi: {} } }, {}));
  assert.equal(e.issues[0]!.path, 'identity.workloadApi.socket');
  assert.match(e.message, /pass socket: 'unix:\/\/\/run\/spire\/sockets\/agent\.sock'.*or set SPIFFE_ENDPOINT_SOCKET/);
});

test('identity.workloadApi: unknown keys, an empty hint and two different start timeouts are refused', () => {
  const typo = configError(() => resolveConfig({ service: 'a', identity: { workloadApi: { sock: 'unix:///a.sock' } } } as never, {}));
  assert.match(typo.message, /identity\.workloadApi\.sock/);
  const empty = configError(() => resolveConfig({ service: 'a', identity: { workloadApi: { socket: 'unix:///a.sock', hint: '' } } }, {}));
  assert.equal(empty.issues[0]!.path, 'identity.workloadApi.hint');
  const two = configError(() => resolveConfig({ service: 'a', identity: { workloadApi: { socket: 'unix:///a.sock', startTimeout: '1s' }, startTimeout: '2s' } }, {}));
  assert.equal(two.issues[0]!.path, 'identity.workloadApi.startTimeout');
  const same = resolveConfig({ service: 'a', identity: { workloadApi: { socket: 'unix:///a.sock', startTimeout: '2s' }, startTimeout: 2000 } }, {});
  assert.ok(same.identity && 'workloadApi' in same.identity);
});
