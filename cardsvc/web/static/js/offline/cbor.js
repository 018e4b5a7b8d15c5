// A strict CBOR (RFC 8949) decoder for untrusted input: the subset our credentials and trust
// bundles use. Definite lengths only (indefinite lengths and reserved values are refused, where
// cbor2 accepts indefinite lengths: the one intended difference from the Python verifier — NOK
// "cbor" here, even for a genuine credential whose envelope someone re-encoded with indefinite
// lengths, which cbor2 verifies); no tags except one on the outermost item
// (COSE_Sign1 = 18);
// nesting depth and every declared length bounded by the input; maps are Map objects (never plain
// objects, so no prototype pollution). Errors: VerifyError("cbor") or ("trailing_bytes").
//
// Value model: unsigned/negative integers → number (BigInt beyond 2^53), byte strings → Uint8Array,
// text → string (strict UTF-8), arrays → Array, maps → Map, floats → CborFloat, true/false/null,
// undefined → UNDEFINED, a stray break → BREAK, other simple values → CborSimple, the outer tag →
// CborTag.
// Map keys are normalised as Python compares dict keys (cbor2 decodes into dicts): integers,
// booleans (true == 1) and integral floats become the same number; text keys are "t:" + text;
// any other key is "x:" + the hex of its encoded bytes.

import { VerifyError } from "./errors.js";

export const MAX_DEPTH = 400; // cbor2's nesting limit
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class CborTag {
  constructor(tag, value) { this.tag = tag; this.value = value; Object.freeze(this); }
}
export class CborFloat {
  constructor(value) { this.value = value; Object.freeze(this); }
}
export class CborSimple {
  constructor(value) { this.value = value; Object.freeze(this); }
}
export const UNDEFINED = Object.freeze({ cborUndefined: true });
// A "break" byte (0xff) where an item is expected decodes as this inert value, as cbor2 does; it
// never ends anything (indefinite lengths are refused), so it only fails the type checks after.
export const BREAK = Object.freeze({ cborBreak: true });

/** Decode exactly one item spanning all of `bytes`. `outerTag`: accept a tag on the outermost
 * item (COSE_Sign1); tags anywhere else are refused. */
export function decodeExact(bytes, { outerTag = false } = {}) {
  if (!(bytes instanceof Uint8Array)) throw new VerifyError("cbor", "CBOR input must be bytes");
  const reader = new Reader(bytes, outerTag);
  const value = reader.item(0);
  if (reader.pos !== bytes.length) throw new VerifyError("trailing_bytes", "bytes after the CBOR item");
  return value;
}

/** The normalised key a decoded map uses for `value` (integers map to themselves). */
export function mapKey(value) {
  if (typeof value === "number" || typeof value === "bigint") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string") return "t:" + value;
  if (value instanceof CborFloat && Number.isInteger(value.value)) {
    return Number.isSafeInteger(value.value) ? value.value : BigInt(value.value);
  }
  return null; // the caller falls back to the encoded bytes
}

function fail(message) {
  throw new VerifyError("cbor", message);
}

function toHex(bytes) {
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

class Reader {
  constructor(bytes, outerTag) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    this.outerTag = outerTag;
  }

  need(count) {
    if (count > this.bytes.length - this.pos) fail("CBOR item runs past the end of the input");
  }

  /** The initial byte's major type and argument (a number, or a BigInt above 2^53). */
  head() {
    this.need(1);
    const initial = this.bytes[this.pos++];
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (info < 24 || (major === 7 && info === 31)) return [major, info, info];
    if (info > 27) fail(info === 31 ? "indefinite lengths are not accepted" : "reserved CBOR value");
    const size = 1 << (info - 24);
    this.need(size);
    const at = this.pos;
    this.pos += size;
    if (size === 1) return [major, this.bytes[at], info];
    if (size === 2) return [major, this.view.getUint16(at), info];
    if (size === 4) return [major, this.view.getUint32(at), info];
    const big = this.view.getBigUint64(at);
    return [major, big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big, info];
  }

  item(depth) {
    if (depth > MAX_DEPTH) fail("CBOR nesting too deep");
    const start = this.pos;
    const [major, arg, info] = this.head();
    switch (major) {
      case 0: return arg;
      case 1: return negative(arg);
      case 2: return this.bytes.slice(this.pos, this.advance(arg));
      case 3: return this.text(arg);
      case 4: return this.array(arg, depth);
      case 5: return this.map(arg, depth);
      case 6: return this.tag(arg, depth, start);
      default: return this.simple(arg, info);
    }
  }

  advance(length) {
    if (typeof length === "bigint") fail("CBOR length too large");
    this.need(length);
    this.pos += length;
    return this.pos;
  }

  text(length) {
    const start = this.pos;
    const end = this.advance(length);
    try {
      return UTF8.decode(this.bytes.subarray(start, end));
    } catch {
      return fail("text string is not valid UTF-8");
    }
  }

  array(count, depth) {
    if (typeof count === "bigint" || count > this.bytes.length - this.pos) fail("CBOR array too long");
    const out = new Array(count);
    for (let i = 0; i < count; i++) out[i] = this.item(depth + 1);
    return out;
  }

  map(count, depth) {
    if (typeof count === "bigint" || 2 * count > this.bytes.length - this.pos) fail("CBOR map too long");
    const out = new Map();
    for (let i = 0; i < count; i++) {
      const keyStart = this.pos;
      const key = this.item(depth + 1);
      const normal = mapKey(key) ?? "x:" + toHex(this.bytes.subarray(keyStart, this.pos));
      out.set(normal, this.item(depth + 1));
    }
    return out;
  }

  tag(number, depth, start) {
    if (start !== 0 || !this.outerTag) fail("CBOR tags are not accepted here");
    const tagged = this.item(depth + 1);
    return new CborTag(number, tagged);
  }

  simple(arg, info) {
    if (info === 25) return new CborFloat(half(this.view.getUint16(this.pos - 2)));
    if (info === 26) return new CborFloat(this.view.getFloat32(this.pos - 4));
    if (info === 27) return new CborFloat(this.view.getFloat64(this.pos - 8));
    const named = SIMPLE.get(info);
    return named === undefined ? new CborSimple(arg) : named.value;
  }
}

const SIMPLE = new Map([[20, { value: false }], [21, { value: true }], [22, { value: null }],
  [23, { value: UNDEFINED }], [31, { value: BREAK }]]);

function negative(arg) {
  if (typeof arg === "bigint") {
    const value = -1n - arg;
    return value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value;
  }
  return -1 - arg;
}

function half(bits) {
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}
