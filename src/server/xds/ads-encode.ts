/**
 * A DiscoveryResponse's bytes for the ADS server's pushes: exactly encodeDiscoveryResponse's
 * (test/server/xds/ads-encode.test.ts compares them), written into one buffer sized up front.
 * A push to 1,000 clients encodes tens of thousands of Any wrappers; the generated codec builds
 * a Writer, a TextEncoder pass over the type URL and a concatenation for each, this encodes the
 * type URL once per response and copies each resource's bytes once. Pure.
 */
import { type DiscoveryResponse, encodeDiscoveryResponse } from '../../proto/envoy/service/discovery/v3/discovery.js';

const LEN = 2; // wire type length-delimited

const varintSize = (n: number): number => {
  let size = 1;
  for (let v = n; v > 0x7f; v = Math.floor(v / 0x80)) size++;
  return size;
};

/** A length-delimited field's size: tag, length, bytes; 0 for an empty field (proto3 omits it). */
const fieldSize = (len: number): number => (len === 0 ? 0 : 1 + varintSize(len) + len);

class Out {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(n: number): void {
    let v = n;
    while (v > 0x7f) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /** Field `field` (< 16), length-delimited; nothing when empty. */
  field(field: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.buf[this.pos++] = (field << 3) | LEN;
    this.varint(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
}

export function serializeDiscoveryResponse(r: DiscoveryResponse): Buffer {
  if (r.controlPlane !== undefined) return Buffer.from(encodeDiscoveryResponse(r));
  const version = Buffer.from(r.versionInfo);
  const typeUrl = Buffer.from(r.typeUrl);
  const nonce = Buffer.from(r.nonce);
  const urls = r.resources.map((a) => (a.typeUrl === r.typeUrl ? typeUrl : Buffer.from(a.typeUrl)));
  const anySizes = r.resources.map((a, i) => fieldSize(urls[i]!.length) + fieldSize(a.value.length));
  let size = fieldSize(version.length) + fieldSize(typeUrl.length) + fieldSize(nonce.length) + (r.canary ? 2 : 0);
  // An Any is written even when empty (a repeated message field keeps its elements): tag and length 0.
  for (const s of anySizes) size += 1 + varintSize(s) + s;
  const out = new Out(Buffer.allocUnsafe(size));
  out.field(1, version);
  r.resources.forEach((a, i) => {
    out.buf[out.pos++] = (2 << 3) | LEN;
    out.varint(anySizes[i]!);
    out.field(1, urls[i]!);
    out.field(2, a.value);
  });
  if (r.canary) {
    out.buf[out.pos++] = 3 << 3;
    out.buf[out.pos++] = 1;
  }
  out.field(4, typeUrl);
  out.field(5, nonce);
  return out.buf;
}
