// The trust bundle (cardsvc/credential/bundle.py): a COSE_Sign1 signed by the bundle key, whose
// payload is {1 format, 2 sequence, 3 issued_at, 4 expires_at, 5 issuer|null, 6 [key record…],
// 7 revoked card numbers packed as sorted unique big-endian 64-bit words (digits as hex, padded
// with F)}. loadBundle verifies the signature against the pinned anchors FIRST, then parses
// strictly. Errors: VerifyError("bundle_malformed" | "bundle_signature" | "anchor_invalid").

import { decodeExact, CborFloat } from "./cbor.js";
import { decodeSign1, importPublicKey, sigStructure, verifySignature, EDDSA, ES256 } from "./cose.js";
import { VerifyError } from "./errors.js";

export const MAX_BUNDLE_SIZE = 16 * 1024 * 1024;
const FIELDS = [1, 2, 3, 4, 5, 6, 7];
const KEY_FIELDS = [1, 2, 3, 4, 5, 6];
const STATES = new Set(["active", "retired", "revoked"]);
const ALG_LABELS = new Map([["eddsa", EDDSA], ["es256", ES256]]);
const MAX_TIME = 253402300799;

export function toHex(bytes) {
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

export function fromHex(hex) {
  if (typeof hex !== "string" || hex.length % 2 || /[^0-9a-fA-F]/.test(hex)) throw new TypeError("not hex");
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/** The trust anchor from a COSE_Key (`cardsvc trust anchor --out anchor.cose`):
 * {kid, alg, publicKey}; throws VerifyError("anchor_invalid"). */
export function anchorFromCoseKey(raw) {
  try {
    const key = decodeExact(raw);
    const kid = key.get(2), alg = key.get(3), x = key.get(-2), y = key.get(-3);
    const kty = key.get(1), crv = key.get(-1);
    if (!(kid instanceof Uint8Array && kid.length && x instanceof Uint8Array)) throw new TypeError("fields");
    if (alg === EDDSA && kty === 1 && crv === 6) return Object.freeze({ kid, alg, publicKey: x });
    if (alg === ES256 && kty === 2 && crv === 1 && y instanceof Uint8Array) {
      return Object.freeze({ kid, alg, publicKey: Uint8Array.of(4, ...x, ...y) });
    }
  } catch {
    // fall through to the one error below
  }
  throw new VerifyError("anchor_invalid", "trust anchor is not a usable COSE_Key");
}

/** Verify and parse a bundle. `anchors`: one anchor or a list (kids may collide: every anchor with
 * the bundle's kid and algorithm is tried). Returns a frozen Bundle. */
export async function loadBundle(raw, anchors) {
  let sign1;
  try {
    sign1 = decodeSign1(raw, MAX_BUNDLE_SIZE);
  } catch {
    throw malformed("not a COSE_Sign1 document");
  }
  await verifyBundleSignature(sign1, Array.isArray(anchors) ? anchors : [anchors]);
  let data;
  try {
    data = decodeExact(sign1.payload);
  } catch {
    throw malformed("payload is not CBOR");
  }
  return parsePayload(data);
}

async function verifyBundleSignature(sign1, anchors) {
  const named = anchors.filter((a) => toHex(a.kid) === toHex(sign1.kid));
  if (!named.length) throw signatureError("bundle signed by an unknown key");
  const pinned = named.filter((a) => a.alg === sign1.alg);
  if (!pinned.length) throw signatureError("bundle algorithm does not match the trust anchor");
  const message = sigStructure(sign1.protected, sign1.payload);
  for (const anchor of pinned) {
    if (await anchorVerifies(anchor, sign1.signature, message)) return;
  }
  throw signatureError("bundle signature does not verify");
}

async function anchorVerifies(anchor, signature, message) {
  try {
    const key = await importPublicKey(anchor.alg, anchor.publicKey);
    return await verifySignature(anchor.alg, key, signature, message);
  } catch {
    return false;
  }
}

async function parsePayload(data) {
  if (!hasExactly(data, FIELDS)) throw malformed("fields");
  if (!pyEqualsOne(data.get(1))) throw malformed("format");
  const sequence = data.get(2), issuer = data.get(5);
  if (!isInteger(sequence) || sequence < 0) throw malformed("sequence");
  if (!(issuer === null || typeof issuer === "string")) throw malformed("issuer");
  const keyList = data.get(6);
  if (!Array.isArray(keyList)) throw malformed("keys");
  const keys = new Map();
  for (const record of keyList) {
    const key = await keyFromMap(record);
    if (keys.has(toHex(key.kid))) throw malformed("duplicate_kid");
    keys.set(toHex(key.kid), key);
  }
  return new Bundle({
    sequence: Number(sequence), issuedAt: time(data.get(3)), expiresAt: time(data.get(4)),
    issuer, keys, revoked: revocations(data.get(7)),
  });
}

async function keyFromMap(record) {
  if (!hasExactly(record, KEY_FIELDS)) throw malformed("key record fields");
  const kid = record.get(1), alg = algorithm(record.get(2)), publicKey = record.get(3);
  const state = record.get(4), notAfter = record.get(6);
  if (!(kid instanceof Uint8Array && kid.length && publicKey instanceof Uint8Array
        && typeof state === "string" && STATES.has(state))) {
    throw malformed("key record field types");
  }
  let cryptoKey;
  try {
    cryptoKey = await importPublicKey(alg, publicKey);
  } catch {
    throw malformed("key");
  }
  return Object.freeze({
    kid, alg, publicKey, state, cryptoKey, notBefore: time(record.get(5)),
    notAfter: notAfter === null ? null : time(notAfter),
  });
}

function algorithm(value) {
  if (typeof value === "number" && (value === EDDSA || value === ES256)) return value;
  const label = typeof value === "string" ? ALG_LABELS.get(value.toLowerCase()) : undefined;
  if (label === undefined) throw malformed("algorithm");
  return label;
}

/** Revoked card-number words as 16-char lowercase hex strings, strictly ascending. */
function revocations(packed) {
  if (!(packed instanceof Uint8Array) || packed.length % 8) throw malformed("revoked");
  const words = new Set();
  let previous = "";
  for (let at = 0; at < packed.length; at += 8) {
    const word = toHex(packed.subarray(at, at + 8));
    if (word <= previous) throw malformed("revoked_order");
    words.add(word);
    previous = word;
  }
  return words;
}

function hasExactly(map, fields) {
  return map instanceof Map && map.size === fields.length && fields.every((f) => map.has(f));
}

function pyEqualsOne(value) {
  return value === 1 || value === true || (value instanceof CborFloat && value.value === 1);
}

function isInteger(value) {
  return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
}

function time(value) {
  if (!isInteger(value) || value < 0 || value > MAX_TIME) throw malformed("time");
  return Number(value);
}

function malformed(what) {
  return new VerifyError("bundle_malformed", `bundle payload is malformed (${what})`);
}

function signatureError(message) {
  return new VerifyError("bundle_signature", message);
}

/** The 16-hex-digit revocation word of a 1-16-digit card number (null for anything else). */
export function cardNumberWord(cardNumber) {
  if (typeof cardNumber !== "string" || !/^[0-9]{1,16}$/.test(cardNumber)) return null;
  return cardNumber.padEnd(16, "f");
}

/** A verified bundle. Times are NumericDate seconds. */
export class Bundle {
  constructor({ sequence, issuedAt, expiresAt, issuer, keys, revoked }) {
    Object.assign(this, { sequence, issuedAt, expiresAt, issuer, keys, revoked });
    Object.freeze(this);
  }

  /** The key record for a kid (a lookup hint), or null. */
  key(kid) {
    return this.keys.get(toHex(kid)) ?? null;
  }

  /** Fails closed: anything that is not a 1-16-digit card number counts as revoked. */
  isRevoked(cardNumber) {
    const word = cardNumberWord(cardNumber);
    return word === null || this.revoked.has(word);
  }

  /** issued_at ≤ now < expires_at, `nowMs` in milliseconds. */
  isFresh(nowMs) {
    return this.issuedAt * 1000 <= nowMs && nowMs < this.expiresAt * 1000;
  }
}
