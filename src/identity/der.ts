/**
 * A small, strict DER reader for exactly the X.509 fields the SPIFFE checks need: serial, validity,
 * subject and issuer names, the subject public key's algorithm and size, and the subjectAltName,
 * keyUsage, basicConstraints and extendedKeyUsage extensions. Pure (no I/O, no dependencies).
 *
 * Strict on purpose: a peer chooses these bytes. Lengths beyond their enclosing element, indefinite
 * or non-minimal lengths, high tag numbers, unexpected tags, trailing bytes and duplicate
 * extensions are refused with a DerError; nothing here recurses on input-controlled depth, so no
 * input can exhaust the stack or crash the process. Signatures are not checked here (node:crypto
 * does that).
 */

export class DerError extends Error {
  readonly code = 'ERR_SIDECARLESS_DER';
  constructor(message: string, offset?: number) {
    super(`malformed certificate DER: ${message}${offset === undefined ? '' : ` (at byte ${offset})`}`);
    this.name = 'DerError';
  }
}

/** Tags used below (universal class unless noted). */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8String: 0x0c,
  NumericString: 0x12,
  PrintableString: 0x13,
  TeletexString: 0x14,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  VisibleString: 0x1a,
  UniversalString: 0x1c,
  BMPString: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One element: its tag, where its contents start and end, and where the whole element started. */
export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly contentStart: number;
  /** Offset just past the last content byte. */
  readonly end: number;
}

/** Largest length we accept (certificates are far smaller; this keeps arithmetic exact). */
const MAX_LENGTH = 0x7fffffff;

/** Reads one element at `pos`, which must fit before `limit`. */
export function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (pos >= limit) throw new DerError('expected an element, found the end of its container', pos);
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`high tag number form (0x${tag.toString(16)}) is not used in certificates`, pos);
  if (pos + 1 >= limit) throw new DerError('truncated: the length is missing', pos);
  const first = buf[pos + 1]!;
  let len: number;
  let contentStart: number;
  if (first < 0x80) {
    len = first;
    contentStart = pos + 2;
  } else {
    if (first === 0x80) throw new DerError('indefinite length (BER, not DER)', pos + 1);
    const n = first & 0x7f;
    if (n > 4) throw new DerError(`a length of ${n} bytes`, pos + 1);
    if (pos + 2 + n > limit) throw new DerError('truncated: the length runs past the end', pos + 1);
    if (buf[pos + 2] === 0) throw new DerError('non-minimal length (leading zero byte)', pos + 1);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    if (len < 0x80) throw new DerError('non-minimal length (long form for a short length)', pos + 1);
    if (len > MAX_LENGTH) throw new DerError('length too large', pos + 1);
    contentStart = pos + 2 + n;
  }
  const end = contentStart + len;
  if (end > limit) throw new DerError(`length ${len} runs past the end of its container`, pos);
  return { tag, start: pos, contentStart, end };
}

/** Sequential reader over the contents of one constructed element (or a whole buffer). */
export class DerReader {
  #pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end: number = buf.length,
  ) {
    if (start < 0 || end > buf.length || start > end) throw new DerError('reader bounds outside the buffer');
    this.#pos = start;
  }

  static of(buf: Uint8Array, tlv: Tlv): DerReader {
    return new DerReader(buf, tlv.contentStart, tlv.end);
  }

  get done(): boolean {
    return this.#pos >= this.end;
  }

  get pos(): number {
    return this.#pos;
  }

  /** The tag of the next element, or undefined at the end. */
  peekTag(): number | undefined {
    return this.done ? undefined : this.buf[this.#pos];
  }

  /** Reads the next element; with `tag`, it must have that tag. */
  next(tag?: number, what?: string): Tlv {
    if (this.done) throw new DerError(`expected ${what ?? 'an element'}, found the end of its container`, this.#pos);
    const tlv = readTlv(this.buf, this.#pos, this.end);
    if (tag !== undefined && tlv.tag !== tag) {
      throw new DerError(`expected ${what ?? 'tag 0x' + tag.toString(16)} (tag 0x${tag.toString(16)}), found tag 0x${tlv.tag.toString(16)}`, tlv.start);
    }
    this.#pos = tlv.end;
    return tlv;
  }

  /** Reads the next element only when it has `tag`. */
  optional(tag: number): Tlv | undefined {
    return this.peekTag() === tag ? this.next(tag) : undefined;
  }

  /** Nothing may follow the last expected element. */
  finish(what: string): void {
    if (!this.done) throw new DerError(`trailing bytes after ${what}`, this.#pos);
  }
}

/** The contents of an element, without copying. */
export function contents(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.contentStart, tlv.end);
}

/** Parses a whole buffer as exactly one element with `tag` (no trailing bytes). */
export function readWhole(buf: Uint8Array, tag: number, what: string): Tlv {
  const r = new DerReader(buf);
  const tlv = r.next(tag, what);
  r.finish(what);
  return tlv;
}

/** BOOLEAN: DER allows exactly 0x00 and 0xff. */
export function readBoolean(buf: Uint8Array, tlv: Tlv): boolean {
  if (tlv.end - tlv.contentStart !== 1) throw new DerError('a BOOLEAN must be one byte', tlv.start);
  const v = buf[tlv.contentStart];
  if (v === 0x00) return false;
  if (v === 0xff) return true;
  throw new DerError(`a DER BOOLEAN is 0x00 or 0xff, not 0x${v!.toString(16)}`, tlv.start);
}

function checkInteger(buf: Uint8Array, tlv: Tlv, what: string): void {
  const len = tlv.end - tlv.contentStart;
  if (len === 0) throw new DerError(`${what}: an INTEGER has at least one byte`, tlv.start);
  if (len > 1) {
    const a = buf[tlv.contentStart]!;
    const b = buf[tlv.contentStart + 1]!;
    if ((a === 0x00 && b < 0x80) || (a === 0xff && b >= 0x80)) throw new DerError(`${what}: non-minimal INTEGER`, tlv.start);
  }
}

/** A non-negative INTEGER small enough for a JS number (pathLenConstraint and the like). */
export function readSmallUint(buf: Uint8Array, tlv: Tlv, what: string): number {
  checkInteger(buf, tlv, what);
  if (buf[tlv.contentStart]! >= 0x80) throw new DerError(`${what} is negative`, tlv.start);
  if (tlv.end - tlv.contentStart > 7) throw new DerError(`${what} is too large`, tlv.start);
  let v = 0;
  for (let i = tlv.contentStart; i < tlv.end; i++) v = v * 256 + buf[i]!;
  if (!Number.isSafeInteger(v)) throw new DerError(`${what} is too large`, tlv.start);
  return v;
}

/**
 * An INTEGER as lower-case hex of its content bytes, without the 0x00 sign byte DER puts before a
 * high first byte (how certificate serial numbers are shown).
 */
export function readIntegerHex(buf: Uint8Array, tlv: Tlv, what: string): string {
  checkInteger(buf, tlv, what);
  const skip = tlv.end - tlv.contentStart > 1 && buf[tlv.contentStart] === 0 ? 1 : 0;
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.contentStart + skip, tlv.end - tlv.contentStart - skip).toString('hex');
}

/** OBJECT IDENTIFIER in dotted form. */
export function readOid(buf: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== Tag.OID) throw new DerError(`expected an OBJECT IDENTIFIER, found tag 0x${tlv.tag.toString(16)}`, tlv.start);
  const { contentStart: s, end: e } = tlv;
  if (e === s) throw new DerError('empty OBJECT IDENTIFIER', tlv.start);
  if (e - s > 128) throw new DerError('OBJECT IDENTIFIER too long', tlv.start);
  if ((buf[e - 1]! & 0x80) !== 0) throw new DerError('truncated OBJECT IDENTIFIER', tlv.start);
  const arcs: string[] = [];
  let i = s;
  let first = true;
  while (i < e) {
    if (buf[i] === 0x80) throw new DerError('non-minimal OBJECT IDENTIFIER arc', i);
    let v = 0;
    let big: bigint | undefined;
    for (;;) {
      const b = buf[i++]!;
      if (big !== undefined) big = (big << 7n) | BigInt(b & 0x7f);
      else {
        v = v * 128 + (b & 0x7f);
        if (v > 2 ** 45) big = BigInt(v);
      }
      if ((b & 0x80) === 0) break;
    }
    if (first) {
      first = false;
      if (big !== undefined) {
        arcs.push('2', String(big - 80n));
      } else if (v < 40) arcs.push('0', String(v));
      else if (v < 80) arcs.push('1', String(v - 40));
      else arcs.push('2', String(v - 80));
    } else arcs.push(big !== undefined ? String(big) : String(v));
  }
  return arcs.join('.');
}

/** UTCTime or GeneralizedTime (RFC 5280 forms: whole seconds, Zulu) → ms since the epoch. */
export function readTime(buf: Uint8Array, tlv: Tlv, what: string): number {
  const text = Buffer.from(buf.buffer, buf.byteOffset + tlv.contentStart, tlv.end - tlv.contentStart).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === Tag.UTCTime) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text);
    if (!m) throw new DerError(`${what}: UTCTime must be YYMMDDHHMMSSZ`, tlv.start);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tlv.tag === Tag.GeneralizedTime) {
    m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text);
    if (!m) throw new DerError(`${what}: GeneralizedTime must be YYYYMMDDHHMMSSZ`, tlv.start);
    year = Number(m[1]);
  } else {
    throw new DerError(`${what}: expected UTCTime or GeneralizedTime, found tag 0x${tlv.tag.toString(16)}`, tlv.start);
  }
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  // Date.UTC rolls over out-of-range fields (month 13, Feb 30, hour 24): refuse instead.
  if (
    month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59 ||
    d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day
  ) {
    throw new DerError(`${what}: invalid date ${text}`, tlv.start);
  }
  return ms;
}

/** Decodes a directory string for display; undefined for other value types (shown as `#` + hex of their DER). */
function directoryString(buf: Uint8Array, tlv: Tlv): string | undefined {
  const body = Buffer.from(buf.buffer, buf.byteOffset + tlv.contentStart, tlv.end - tlv.contentStart);
  switch (tlv.tag) {
    case Tag.UTF8String:
      return body.toString('utf8');
    case Tag.PrintableString:
    case Tag.IA5String:
    case Tag.NumericString:
    case Tag.TeletexString:
      return body.toString('latin1');
    case Tag.BMPString:
      return body.length % 2 ? undefined : Buffer.from(body).swap16().toString('utf16le');
    case Tag.UniversalString: {
      if (body.length % 4) return undefined;
      let s = '';
      for (let i = 0; i < body.length; i += 4) {
        const cp = body.readUInt32BE(i);
        if (cp > 0x10ffff) return undefined;
        s += String.fromCodePoint(cp);
      }
      return s;
    }
  }
  return undefined;
}

const NAME_TYPES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'E',
  '2.5.4.42': 'G',
  '2.5.4.43': 'I',
  '2.5.4.4': 'SN',
  '2.5.4.12': 'T',
};

function escapeRdnValue(v: string): string {
  return v
    .replace(/([,+"\\<>;])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ')
    .replace(/[\u0000-\u001f]/g, (c) => '\\' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

/** A Name as a string: RDNs in encoded order, `, ` between them, `+` inside a multi-valued one. */
export function readName(buf: Uint8Array, tlv: Tlv, what: string): string {
  if (tlv.tag !== Tag.SEQUENCE) throw new DerError(`${what}: a Name is a SEQUENCE`, tlv.start);
  const rdns = DerReader.of(buf, tlv);
  const out: string[] = [];
  while (!rdns.done) {
    const set = DerReader.of(buf, rdns.next(Tag.SET, `${what}: RelativeDistinguishedName`));
    if (set.done) throw new DerError(`${what}: empty RelativeDistinguishedName`, set.pos);
    const parts: string[] = [];
    while (!set.done) {
      const atv = DerReader.of(buf, set.next(Tag.SEQUENCE, `${what}: AttributeTypeAndValue`));
      const type = readOid(buf, atv.next(Tag.OID, `${what}: attribute type`));
      const value = atv.next(undefined, `${what}: attribute value`);
      atv.finish(`${what}: AttributeTypeAndValue`);
      // A string type (DirectoryString, IA5String, NumericString) or nothing: OpenSSL refuses most
      // other tags here, and a reader must never take what the signature checker cannot parse.
      const text = directoryString(buf, value);
      if (text === undefined) throw new DerError(`${what}: attribute ${type} is not a string (tag 0x${value.tag.toString(16)})`, value.start);
      parts.push(`${NAME_TYPES[type] ?? type}=${escapeRdnValue(text)}`);
    }
    out.push(parts.join('+'));
  }
  return out.join(', ');
}

/** IA5String contents (URI and DNS names): ASCII only; anything else is not DER. */
function ia5(buf: Uint8Array, tlv: Tlv, what: string): string {
  for (let i = tlv.contentStart; i < tlv.end; i++) {
    if (buf[i]! > 0x7f) throw new DerError(`${what}: a byte above 0x7f in an IA5String`, i);
  }
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.contentStart, tlv.end - tlv.contentStart).toString('latin1');
}

/** GeneralName tags ([0]…[8], context-specific; constructed where the type is). */
const GENERAL_NAME_TAGS = new Set([0xa0, 0x81, 0x82, 0xa3, 0xa4, 0xa5, 0x86, 0x87, 0x88]);

export interface SubjectAltNames {
  /** uniformResourceIdentifier [6] values, in order, exactly as encoded. */
  readonly uris: string[];
  /** dNSName [2] values. */
  readonly dnsNames: string[];
}

/**
 * subjectAltName: GeneralNames ::= SEQUENCE OF GeneralName. Only [6] URI and [2] dNSName are read;
 * every other name type (otherName, rfc822Name, directoryName, iPAddress, …) is skipped whole by
 * its length, so nothing inside it can be taken for a URI. A tag that is no GeneralName is refused.
 */
export function readSubjectAltNames(extnValue: Uint8Array): SubjectAltNames {
  const seq = readWhole(extnValue, Tag.SEQUENCE, 'subjectAltName');
  const r = DerReader.of(extnValue, seq);
  const uris: string[] = [];
  const dnsNames: string[] = [];
  while (!r.done) {
    const gn = r.next(undefined, 'GeneralName');
    if (!GENERAL_NAME_TAGS.has(gn.tag)) throw new DerError(`subjectAltName: tag 0x${gn.tag.toString(16)} is not a GeneralName`, gn.start);
    if (gn.tag === 0x86) uris.push(ia5(extnValue, gn, 'subjectAltName URI'));
    else if (gn.tag === 0x82) dnsNames.push(ia5(extnValue, gn, 'subjectAltName dNSName'));
  }
  return { uris, dnsNames };
}

/**
 * keyUsage BIT STRING → flags where bit n of the ASN.1 bit string (digitalSignature = 0,
 * keyCertSign = 5, cRLSign = 6, decipherOnly = 8) is `1 << n`.
 */
export function readKeyUsage(extnValue: Uint8Array): number {
  const bs = readWhole(extnValue, Tag.BIT_STRING, 'keyUsage');
  const len = bs.end - bs.contentStart;
  if (len < 1) throw new DerError('keyUsage: empty BIT STRING', bs.start);
  if (len > 3) throw new DerError('keyUsage: longer than the 9 defined bits', bs.start);
  const unused = extnValue[bs.contentStart]!;
  if (unused > 7 || (len === 1 && unused !== 0)) throw new DerError('keyUsage: invalid unused-bits count', bs.start);
  if (len > 1 && (extnValue[bs.end - 1]! & ((1 << unused) - 1)) !== 0) throw new DerError('keyUsage: unused bits are not zero', bs.start);
  let flags = 0;
  for (let i = 1; i < len; i++) {
    const byte = extnValue[bs.contentStart + i]!;
    for (let bit = 0; bit < 8; bit++) if (byte & (0x80 >> bit)) flags |= 1 << ((i - 1) * 8 + bit);
  }
  return flags;
}

/** basicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL } */
export function readBasicConstraints(extnValue: Uint8Array): { isCa: boolean; pathLength: number | undefined } {
  const seq = readWhole(extnValue, Tag.SEQUENCE, 'basicConstraints');
  const r = DerReader.of(extnValue, seq);
  const ca = r.optional(Tag.BOOLEAN);
  const isCa = ca ? readBoolean(extnValue, ca) : false;
  const pl = r.optional(Tag.INTEGER);
  const pathLength = pl ? readSmallUint(extnValue, pl, 'pathLenConstraint') : undefined;
  r.finish('basicConstraints');
  return { isCa, pathLength };
}

/** extKeyUsage ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (OIDs). */
export function readExtKeyUsage(extnValue: Uint8Array): string[] {
  const seq = readWhole(extnValue, Tag.SEQUENCE, 'extKeyUsage');
  const r = DerReader.of(extnValue, seq);
  const out: string[] = [];
  while (!r.done) out.push(readOid(extnValue, r.next(Tag.OID, 'KeyPurposeId')));
  if (out.length === 0) throw new DerError('extKeyUsage: empty', seq.start);
  return out;
}

export const OID_RSA = '1.2.840.113549.1.1.1';
export const OID_RSA_PSS = '1.2.840.113549.1.1.10';
export const OID_DSA = '1.2.840.10040.4.1';
export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';

/** What the key-strength rules read from subjectPublicKeyInfo. */
export interface PublicKeyInfo {
  /** The AlgorithmIdentifier's OID (rsaEncryption, id-ecPublicKey, id-Ed25519, id-dsa, …). */
  readonly algorithm: string;
  /** id-ecPublicKey: the namedCurve OID, or 'explicit' for explicit curve parameters (or none). */
  readonly curve?: string;
  /** RSA: the modulus length in bits; DSA: the length of p in bits (when the parameters are present). */
  readonly bits?: number;
  /** RSA: the public exponent. */
  readonly exponent?: bigint;
}

/** Bit length of a non-negative INTEGER's contents (DER-minimal: at most one leading 0x00). */
function integerBits(buf: Uint8Array, tlv: Tlv, what: string): number {
  checkInteger(buf, tlv, what);
  let i = tlv.contentStart;
  if (buf[i]! >= 0x80) throw new DerError(`${what} is negative`, tlv.start);
  if (buf[i] === 0 && i + 1 < tlv.end) i++;
  const first = buf[i]!;
  return first === 0 ? 0 : (tlv.end - i - 1) * 8 + (32 - Math.clz32(first));
}

/**
 * SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }.
 * Reads the algorithm, an EC key's named curve, and an RSA key's modulus size (from RSAPublicKey
 * inside the BIT STRING) — enough to judge key strength. EC points and Ed25519 keys are not read.
 */
export function readSubjectPublicKeyInfo(buf: Uint8Array, tlv: Tlv): PublicKeyInfo {
  const spki = DerReader.of(buf, tlv);
  const alg = DerReader.of(buf, spki.next(Tag.SEQUENCE, 'subjectPublicKeyInfo algorithm'));
  const algorithm = readOid(buf, alg.next(Tag.OID, 'public key algorithm'));
  const params = alg.done ? undefined : alg.next(undefined, 'public key parameters');
  alg.finish('the public key AlgorithmIdentifier');
  const key = spki.next(Tag.BIT_STRING, 'subjectPublicKey');
  spki.finish('subjectPublicKeyInfo');
  if (key.end === key.contentStart) throw new DerError('subjectPublicKey: empty BIT STRING', key.start);
  if (buf[key.contentStart] !== 0) throw new DerError('subjectPublicKey: the BIT STRING has unused bits (a key is whole bytes)', key.start);
  if (algorithm === OID_EC_PUBLIC_KEY) {
    // ECParameters: a named curve (OID) or explicit parameters (SEQUENCE, refused by key strength).
    if (params?.tag !== Tag.OID && params?.tag !== Tag.SEQUENCE) throw new DerError('EC public key: the parameters must name a curve', alg.pos);
    return { algorithm, curve: params.tag === Tag.OID ? readOid(buf, params) : 'explicit' };
  }
  if (algorithm === OID_RSA || algorithm === OID_RSA_PSS) {
    const rsa = new DerReader(buf, key.contentStart + 1, key.end);
    const body = DerReader.of(buf, rsa.next(Tag.SEQUENCE, 'RSAPublicKey'));
    rsa.finish('RSAPublicKey');
    const bits = integerBits(buf, body.next(Tag.INTEGER, 'RSA modulus'), 'RSA modulus');
    const e = body.next(Tag.INTEGER, 'RSA public exponent');
    if (integerBits(buf, e, 'RSA public exponent') > 4096) throw new DerError('RSA public exponent: longer than 4096 bits', e.start);
    body.finish('RSAPublicKey');
    return { algorithm, bits, exponent: BigInt(`0x${Buffer.from(buf.subarray(e.contentStart, e.end)).toString('hex') || '0'}`) };
  }
  if (algorithm === OID_DSA && params?.tag === Tag.SEQUENCE) {
    const pqg = DerReader.of(buf, params);
    return { algorithm, bits: integerBits(buf, pqg.next(Tag.INTEGER, 'DSA p'), 'DSA p') };
  }
  return { algorithm };
}

export const OID_SUBJECT_ALT_NAME = '2.5.29.17';
export const OID_KEY_USAGE = '2.5.29.15';
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_EXT_KEY_USAGE = '2.5.29.37';

/**
 * AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }, read
 * whole (one element at most after the OID). Returns the encoding, for comparing two of them.
 */
function readAlgorithmIdentifier(buf: Uint8Array, tlv: Tlv, what: string): Uint8Array {
  const r = DerReader.of(buf, tlv);
  readOid(buf, r.next(Tag.OID, `${what}: algorithm`));
  if (!r.done) r.next(undefined, `${what}: parameters`);
  r.finish(what);
  return buf.subarray(tlv.start, tlv.end);
}

/** BIT STRING contents: an unused-bit count of 0…7 first (0 when there are no bits), then the bits. */
function checkBitString(buf: Uint8Array, tlv: Tlv, what: string): void {
  const c = contents(buf, tlv);
  if (c.length === 0 || c[0]! > 7 || (c.length === 1 && c[0] !== 0)) throw new DerError(`${what}: not a BIT STRING`, tlv.start);
}

/** A BIT STRING holding whole bytes: its first content byte (the unused-bit count) must be 0. */
function readBitStringBytes(buf: Uint8Array, tlv: Tlv, what: string): Uint8Array {
  const c = contents(buf, tlv);
  if (c.length === 0 || c[0] !== 0) throw new DerError(`${what} must be a BIT STRING of whole bytes`, tlv.start);
  return c.subarray(1);
}

/** What the SPIFFE rules read from a certificate. */
export interface CertificateFields {
  readonly version: number;
  readonly serialNumber: string;
  readonly issuer: string;
  readonly subject: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly publicKey: PublicKeyInfo;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly isCa: boolean;
  readonly pathLength: number | undefined;
  readonly keyUsage: number | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  /** Every extension's OID, in order, and whether it is critical. */
  readonly extensions: ReadonlyArray<{ readonly oid: string; readonly critical: boolean }>;
}

/**
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }, the
 * whole buffer and nothing after it. Throws DerError on anything malformed.
 */
export function parseCertificateDer(der: Uint8Array): CertificateFields {
  const cert = DerReader.of(der, readWhole(der, Tag.SEQUENCE, 'Certificate'));
  const tbsTlv = cert.next(Tag.SEQUENCE, 'tbsCertificate');
  const signatureAlgorithm = readAlgorithmIdentifier(der, cert.next(Tag.SEQUENCE, 'signatureAlgorithm'), 'signatureAlgorithm');
  readBitStringBytes(der, cert.next(Tag.BIT_STRING, 'signatureValue'), 'signatureValue');
  cert.finish('the Certificate');

  const tbs = DerReader.of(der, tbsTlv);
  let version = 0;
  const v = tbs.optional(0xa0);
  if (v) {
    const inner = DerReader.of(der, v);
    version = readSmallUint(der, inner.next(Tag.INTEGER, 'version'), 'version');
    inner.finish('version');
    if (version > 2) throw new DerError(`unknown certificate version ${version + 1}`, v.start);
  }
  const serialTlv = tbs.next(Tag.INTEGER, 'serialNumber');
  // RFC 5280 §4.1.2.2: a positive integer. Go's crypto/x509 refuses negative ones too (since 1.23).
  const serialNumber = readIntegerHex(der, serialTlv, 'serialNumber'); // checks the INTEGER's encoding first
  if (der[serialTlv.contentStart]! & 0x80) throw new DerError('serialNumber is negative (RFC 5280 §4.1.2.2: a positive integer)', serialTlv.start);
  const signature = readAlgorithmIdentifier(der, tbs.next(Tag.SEQUENCE, 'signature AlgorithmIdentifier'), 'signature AlgorithmIdentifier');
  // RFC 5280 §4.1.1.2: signatureAlgorithm MUST be the same algorithm identifier as tbsCertificate's signature.
  if (Buffer.compare(signature, signatureAlgorithm) !== 0) throw new DerError('signatureAlgorithm differs from the signature AlgorithmIdentifier of tbsCertificate (RFC 5280 §4.1.1.2)');
  const issuer = readName(der, tbs.next(Tag.SEQUENCE, 'issuer'), 'issuer');
  const validity = DerReader.of(der, tbs.next(Tag.SEQUENCE, 'validity'));
  const notBefore = readTime(der, validity.next(undefined, 'notBefore'), 'notBefore');
  const notAfter = readTime(der, validity.next(undefined, 'notAfter'), 'notAfter');
  validity.finish('validity');
  const subject = readName(der, tbs.next(Tag.SEQUENCE, 'subject'), 'subject');
  const publicKey = readSubjectPublicKeyInfo(der, tbs.next(Tag.SEQUENCE, 'subjectPublicKeyInfo'));
  for (const [tag, name] of [[0x81, 'issuerUniqueID'], [0x82, 'subjectUniqueID']] as const) {
    const uid = tbs.optional(tag);
    if (!uid) continue;
    if (version < 1) throw new DerError(`${name} in a v1 certificate`);
    checkBitString(der, uid, name); // UniqueIdentifier ::= BIT STRING, [1]/[2] IMPLICIT
  }

  let uris: string[] = [];
  let dnsNames: string[] = [];
  let isCa = false;
  let pathLength: number | undefined;
  let keyUsage: number | undefined;
  let extKeyUsage: string[] | undefined;
  const extensions: Array<{ oid: string; critical: boolean }> = [];
  const extsTlv = tbs.optional(0xa3);
  if (extsTlv) {
    if (version !== 2) throw new DerError('extensions in a certificate that is not v3', extsTlv.start);
    const outer = DerReader.of(der, extsTlv);
    const list = DerReader.of(der, outer.next(Tag.SEQUENCE, 'Extensions'));
    outer.finish('extensions');
    if (list.done) throw new DerError('empty Extensions', extsTlv.start);
    const seen = new Set<string>();
    while (!list.done) {
      const ext = DerReader.of(der, list.next(Tag.SEQUENCE, 'Extension'));
      const oid = readOid(der, ext.next(Tag.OID, 'extnID'));
      const crit = ext.optional(Tag.BOOLEAN);
      const critical = crit ? readBoolean(der, crit) : false;
      const value = contents(der, ext.next(Tag.OCTET_STRING, 'extnValue'));
      ext.finish(`extension ${oid}`);
      if (seen.has(oid)) throw new DerError(`extension ${oid} appears twice`);
      seen.add(oid);
      extensions.push({ oid, critical });
      switch (oid) {
        case OID_SUBJECT_ALT_NAME:
          ({ uris, dnsNames } = readSubjectAltNames(value));
          break;
        case OID_KEY_USAGE:
          keyUsage = readKeyUsage(value);
          break;
        case OID_BASIC_CONSTRAINTS:
          ({ isCa, pathLength } = readBasicConstraints(value));
          break;
        case OID_EXT_KEY_USAGE:
          extKeyUsage = readExtKeyUsage(value);
          break;
      }
    }
  }
  tbs.finish('tbsCertificate');
  return { version, serialNumber, issuer, subject, notBefore, notAfter, publicKey, uris, dnsNames, isCa, pathLength, keyUsage, extKeyUsage, extensions };
}
