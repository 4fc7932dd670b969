import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipFromString, ipToString, tcpAddressToString } from '../../src/proto/linkerd/net-addr.js';
import { decodeTcpAddress, encodeTcpAddress } from '../../src/proto/linkerd/net.js';
import { ProtoError } from '../../src/proto/wire.js';

test('IPv4 is the four octets big-endian in one fixed32; IPv6 two big-endian fixed64 halves', () => {
  assert.deepEqual(ipFromString('10.1.0.7'), { ip: { kind: 'ipv4', ipv4: 0x0a010007 } });
  assert.deepEqual(ipFromString('255.0.0.1'), { ip: { kind: 'ipv4', ipv4: 0xff000001 } });
  assert.deepEqual(ipFromString('fd00::1'), { ip: { kind: 'ipv6', ipv6: { first: 0xfd00n << 48n, last: 1n } } });
  for (const a of ['10.1.0.7', '255.255.255.255', '0.0.0.0', 'fd00::1', '::', '2001:db8::1:0:0:1', '1:2:3:4:5:6:7:8']) assert.equal(ipToString(ipFromString(a)), a);
  // Through the wire and back: fixed32 above 2^31 and fixed64 above 2^53 survive.
  const wire = encodeTcpAddress({ ip: ipFromString('fd00:ffff:ffff:ffff:ffff:ffff:ffff:fffe'), port: 8080 });
  assert.equal(tcpAddressToString(decodeTcpAddress(wire)), '[fd00:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:8080');
  assert.equal(tcpAddressToString(decodeTcpAddress(encodeTcpAddress({ ip: ipFromString('192.168.1.2'), port: 80 }))), '192.168.1.2:80');
});

test('an address message without an address, or with a port beyond 65535, is a ProtoError', () => {
  assert.throws(() => ipToString({}), ProtoError);
  assert.throws(() => tcpAddressToString({ port: 80 }), ProtoError);
  assert.throws(() => tcpAddressToString({ ip: ipFromString('10.0.0.1'), port: 70000 }), ProtoError);
  assert.throws(() => ipFromString('300.1.1.1'), ProtoError);
  assert.throws(() => ipFromString('not-an-ip'), ProtoError);
});

test('a Linkerd message records the fields our files do not declare (opaque routes, a deprecated timeout) for the translator to refuse', async () => {
  const { unknownFields, Writer, WireType } = await import('../../src/proto/wire.js');
  const { decodeProxyProtocol } = await import('../../src/proto/linkerd/outbound.js');
  // ProxyProtocol.opaque (2) holding Opaque.routes (1), which we do not declare.
  const opaque = new Writer().tag(1, WireType.LengthDelimited).bytes(Uint8Array.of(0x0a, 0x00)).finish();
  const msg = new Writer().tag(2, WireType.LengthDelimited).bytes(opaque).finish();
  const p = decodeProxyProtocol(msg);
  assert.equal(p.kind?.kind, 'opaque');
  assert.deepEqual(p.kind?.kind === 'opaque' && unknownFields(p.kind.opaque), [1]);
});
