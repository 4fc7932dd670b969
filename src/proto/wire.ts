/**
 * The protobuf wire format, as far as the generated codecs in this folder need it: varints,
 * 64-bit doubles, length-delimited fields, and skipping (and recording) what a message does not declare. No
 * dependency: a mesh that talks to a control plane pays for this file and its generated codecs only.
 * A peer's bytes can never crash the process: every read is bounds-checked and throws ProtoError.
 */

/** Wire types (the low three bits of a tag). */
export enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

/** A message that cannot be decoded: truncated, a wrong wire type, an over-long varint. */
export class ProtoError extends Error {
  override readonly name = 'ProtoError';
}

/** Nested messages deeper than this are refused (a hostile peer cannot exhaust the stack). */
export const MAX_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

export class Writer {
  #chunks: Uint8Array[] = [];
  #scratch: number[] = [];

  #flush(): void {
    if (this.#scratch.length > 0) {
      this.#chunks.push(Uint8Array.from(this.#scratch));
      this.#scratch = [];
    }
  }

  tag(field: number, wire: WireType): this {
    return this.varint(field * 8 + wire);
  }

  /** An unsigned varint; a negative int32/int64 is written as its 10-byte two's complement. */
  varint(value: number): this {
    if (!Number.isInteger(value)) throw new ProtoError(`${value} is not an integer`);
    if (value < 0) {
      let v = BigInt.asUintN(64, BigInt(value));
      while (v > 0x7fn) {
        this.#scratch.push(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      }
      this.#scratch.push(Number(v));
      return this;
    }
    if (!Number.isSafeInteger(value)) throw new ProtoError(`${value} is beyond the integers this codec writes exactly`);
    let v = value;
    while (v > 0x7f) {
      this.#scratch.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.#scratch.push(v);
    return this;
  }

  bool(value: boolean): this {
    return this.varint(value ? 1 : 0);
  }

  double(value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.#scratch.push(...b);
    return this;
  }

  float(value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#scratch.push(...b);
    return this;
  }

  fixed32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new ProtoError(`${value} is not a fixed32`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, true);
    this.#scratch.push(...b);
    return this;
  }

  fixed64(value: bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.#scratch.push(...b);
    return this;
  }

  bytes(value: Uint8Array): this {
    this.varint(value.length);
    this.#flush();
    this.#chunks.push(value);
    return this;
  }

  string(value: string): this {
    return this.bytes(encoder.encode(value));
  }

  finish(): Uint8Array {
    this.#flush();
    if (this.#chunks.length === 1) return this.#chunks[0]!;
    return Buffer.concat(this.#chunks);
  }
}

export class Reader {
  #pos: number;
  readonly #end: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    end = buf.length,
    readonly depth = 0,
  ) {
    if (depth > MAX_DEPTH) throw new ProtoError(`messages nested deeper than ${MAX_DEPTH}`);
    this.#pos = start;
    this.#end = end;
  }

  get done(): boolean {
    return this.#pos >= this.#end;
  }

  /** The next tag as [field number, wire type]. */
  tag(): [number, number] {
    const t = this.varint();
    const field = Math.floor(t / 8);
    if (field === 0) throw new ProtoError('field number 0');
    return [field, t % 8];
  }

  /**
   * An unsigned varint up to 2^53 exactly; larger values (a negative int64) come back as their
   * signed value. A value a number cannot hold exactly (|v| > 2^53 - 1) is a ProtoError: it would
   * be read rounded, and the encoder refuses it (one message, one meaning).
   */
  varint(): number {
    // Tags, lengths and small numbers (up to 4 bytes, 28 bits) in plain arithmetic; longer ones exactly, by BigInt.
    const start = this.#pos;
    let v = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (this.#pos >= this.#end) throw new ProtoError('truncated varint');
      const b = this.buf[this.#pos++]!;
      v |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
    this.#pos = start;
    return this.#longVarint();
  }

  #longVarint(): number {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.#pos >= this.#end) throw new ProtoError('truncated varint');
      const b = this.buf[this.#pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        const u = BigInt.asUintN(64, result);
        if (u <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(u);
        const signed = BigInt.asIntN(64, u);
        if (signed < BigInt(Number.MIN_SAFE_INTEGER) || signed > 0n) throw new ProtoError(`varint ${u} is beyond the integers this codec reads exactly (|v| up to 2^53 - 1)`);
        return Number(signed);
      }
    }
    throw new ProtoError('varint longer than 10 bytes');
  }

  /** An int32: the low 32 bits, signed. */
  int32(): number {
    return Number(BigInt.asIntN(32, BigInt(this.varint())));
  }

  uint32(): number {
    return Number(BigInt.asUintN(32, BigInt(this.varint())));
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  double(): number {
    if (this.#pos + 8 > this.#end) throw new ProtoError('truncated double');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.#pos, 8).getFloat64(0, true);
    this.#pos += 8;
    return v;
  }

  float(): number {
    return this.#view(4).getFloat32(0, true);
  }

  fixed32(): number {
    return this.#view(4).getUint32(0, true);
  }

  /** A fixed64, exactly: as a bigint (an IPv6 half needs all 64 bits). */
  fixed64(): bigint {
    return this.#view(8).getBigUint64(0, true);
  }

  #view(n: number): DataView {
    if (this.#pos + n > this.#end) throw new ProtoError('truncated fixed-width field');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.#pos, n);
    this.#pos += n;
    return v;
  }

  /** The bounds of the next length-delimited field. */
  #span(): [number, number] {
    const len = this.varint();
    if (len < 0 || this.#pos + len > this.#end) throw new ProtoError('length-delimited field runs past the end of its message');
    const start = this.#pos;
    this.#pos += len;
    return [start, this.#pos];
  }

  bytes(): Uint8Array {
    const [s, e] = this.#span();
    return this.buf.slice(s, e);
  }

  string(): string {
    const [s, e] = this.#span();
    try {
      return utf8.decode(this.buf.subarray(s, e));
    } catch {
      throw new ProtoError('a string field is not valid UTF-8');
    }
  }

  /** A reader over the next length-delimited field (a nested message or a packed list). */
  sub(): Reader {
    const [s, e] = this.#span();
    return new Reader(this.buf, s, e, this.depth + 1);
  }

  skip(wire: number): void {
    switch (wire) {
      case WireType.Varint:
        this.varint();
        return;
      case WireType.Fixed64:
        this.#advance(8);
        return;
      case WireType.LengthDelimited:
        this.#span();
        return;
      case WireType.Fixed32:
        this.#advance(4);
        return;
      default:
        throw new ProtoError(`wire type ${wire} is not one this codec reads (groups are not supported)`);
    }
  }

  #advance(n: number): void {
    if (this.#pos + n > this.#end) throw new ProtoError('truncated fixed-width field');
    this.#pos += n;
  }
}

/**
 * What an encoder takes: any field may be left out, at every level (it is then its zero value, or
 * absent for a message, wrapper or oneof member), so a nested message need not spell its zeros.
 */
export type DeepPartial<T> = T extends Uint8Array
  ? T
  : T extends Map<infer K, infer V>
    ? Map<K, DeepPartial<V>>
    : T extends Array<infer U>
      ? DeepPartial<U>[]
      : T extends object
        ? { [K in keyof T]?: DeepPartial<T[K]> }
        : T;

/**
 * Where a decoded message keeps the numbers of the fields it skipped because its .proto does not
 * declare them: a non-enumerable, symbol-keyed array, defined only when a skip happens (a message
 * with none costs nothing and looks exactly as before to encoders, spreads and deepEqual). Each
 * number once, in order of arrival; past MAX_UNKNOWN_FIELDS distinct numbers a final 0 (never a
 * field number) says "and more", so a hostile message cannot grow the list beyond its bound.
 */
export const UNKNOWN_FIELDS: unique symbol = Symbol.for('sidecarless.v1.proto.unknownFields');

/** Distinct skipped field numbers kept per message. */
export const MAX_UNKNOWN_FIELDS = 32;

/** The generated decoders' `default:` branch: skips the field, then records its number. */
export function skipUnknown(r: Reader, m: object, field: number, wire: number): void {
  r.skip(wire);
  const list = (m as { [UNKNOWN_FIELDS]?: number[] })[UNKNOWN_FIELDS];
  if (list === undefined) Object.defineProperty(m, UNKNOWN_FIELDS, { value: [field], enumerable: false });
  else if (!list.includes(field)) {
    if (list.length < MAX_UNKNOWN_FIELDS) list.push(field);
    else if (list.length === MAX_UNKNOWN_FIELDS) list.push(0);
  }
}

/** The field numbers a decoded message skipped (0 last: more than MAX_UNKNOWN_FIELDS), or undefined. */
export function unknownFields(m: object): readonly number[] | undefined {
  return (m as { [UNKNOWN_FIELDS]?: number[] })[UNKNOWN_FIELDS];
}

/**
 * A decode failure inside field `at` of `message`, as a ProtoError whose text names the path down
 * to it (`…Update field 1 (add): …WeightedAddr field 5 (tls_identity): truncated varint`). Anything
 * thrown while decoding becomes a ProtoError: a peer's bytes fail one way only.
 */
export function fieldError(e: unknown, message: string, at: number, names: Readonly<Record<number, string>>): ProtoError {
  const why = e instanceof Error ? e.message : String(e);
  const where = at === 0 ? message : `${message} field ${at}${names[at] ? ` (${names[at]})` : ''}`;
  return new ProtoError(`${where}: ${why}`);
}

/** Throws when a declared field arrives with another wire type than its declaration's. */
export function expectWire(message: string, field: string, got: number, want: WireType): void {
  if (got !== want) throw new ProtoError(`${message}.${field}: wire type ${got}, declared ${want}`);
}

/** Reads a repeated scalar that may arrive packed (proto3's default) or one value per tag. */
export function readRepeated<T>(r: Reader, wire: number, scalarWire: WireType, read: (r: Reader) => T, into: T[]): void {
  if (wire === WireType.LengthDelimited && scalarWire !== WireType.LengthDelimited) {
    const sub = r.sub();
    while (!sub.done) into.push(read(sub));
    return;
  }
  if (wire !== scalarWire) throw new ProtoError(`a repeated field arrived with wire type ${wire}`);
  into.push(read(r));
}
