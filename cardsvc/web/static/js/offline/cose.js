// COSE_Sign1 (RFC 9052 §4.2) decoding and signature checks through WebCrypto: EdDSA (Ed25519) and
// ES256 (P-256, the raw 64-byte r‖s COSE uses, which is also WebCrypto's ECDSA format).
// Mirrors cardsvc/credential/cose.py: tagged COSE_Sign1, four fields, alg (an integer) in the
// protected header, a non-empty kid, no crit. Errors: VerifyError with "too_large", "cbor",
// "trailing_bytes" or "cose_structure".

import { decodeExact, CborTag } from "./cbor.js";
import { VerifyError } from "./errors.js";

export const COSE_SIGN1_TAG = 18;
export const EDDSA = -8;
export const ES256 = -7;
const HEADER_ALG = 1;
const HEADER_CRIT = 2;
const HEADER_KID = 4;
const SIG1_CONTEXT = [0x84, 0x6a, ...new TextEncoder().encode("Signature1")];

/** Parse tagged COSE_Sign1 bytes: {protected, alg, kid, payload, signature} (nothing trusted). */
export function decodeSign1(raw, maxSize) {
  if (raw.length > maxSize) throw new VerifyError("too_large", "COSE_Sign1 too large");
  const item = decodeExact(raw, { outerTag: true });
  if (!(item instanceof CborTag) || item.tag !== COSE_SIGN1_TAG) structure("not a tagged COSE_Sign1");
  const fields = item.value;
  if (!Array.isArray(fields) || fields.length !== 4) structure("COSE_Sign1 needs four fields");
  const [protectedBytes, unprotected, payload, signature] = fields;
  if (!(protectedBytes instanceof Uint8Array && unprotected instanceof Map
        && payload instanceof Uint8Array && signature instanceof Uint8Array)) {
    structure("COSE_Sign1 fields of the wrong type");
  }
  const [alg, kid] = headerFields(protectedBytes, unprotected);
  return Object.freeze({ protected: protectedBytes, alg, kid, payload, signature });
}

function headerFields(protectedBytes, unprotected) {
  const header = protectedBytes.length ? decodeExact(protectedBytes) : new Map();
  if (!(header instanceof Map) || header.has(HEADER_CRIT) || unprotected.has(HEADER_CRIT)) {
    structure("crit parameters are not supported");
  }
  const alg = header.get(HEADER_ALG);
  const kid = header.has(HEADER_KID) ? header.get(HEADER_KID) : unprotected.get(HEADER_KID);
  if (!isInteger(alg) || unprotected.has(HEADER_ALG)) structure("alg must be an integer in the protected header");
  if (!(kid instanceof Uint8Array) || kid.length === 0) structure("kid must be a non-empty byte string");
  return [alg, kid];
}

function isInteger(value) {
  return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
}

function structure(message) {
  throw new VerifyError("cose_structure", message);
}

/** Sig_structure for COSE_Sign1 with empty external AAD (RFC 9052 §4.4). */
export function sigStructure(protectedBytes, payload) {
  const parts = [Uint8Array.from(SIG1_CONTEXT), bstrHeader(protectedBytes.length), protectedBytes,
    Uint8Array.of(0x40), bstrHeader(payload.length), payload];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function bstrHeader(length) {
  if (length < 24) return Uint8Array.of(0x40 | length);
  if (length < 0x100) return Uint8Array.of(0x58, length);
  if (length < 0x10000) return Uint8Array.of(0x59, length >> 8, length & 0xff);
  return Uint8Array.of(0x5a, length >>> 24, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff);
}

const IMPORT = {
  [EDDSA]: { name: "Ed25519" },
  [ES256]: { name: "ECDSA", namedCurve: "P-256" },
};
const VERIFY = {
  [EDDSA]: { name: "Ed25519" },
  [ES256]: { name: "ECDSA", hash: "SHA-256" },
};

/** A WebCrypto verification key from a raw public key (Ed25519 32 B, P-256 uncompressed 65 B);
 * throws VerifyError("key") when the bytes are not a key of that algorithm. */
export async function importPublicKey(alg, raw) {
  const wanted = alg === EDDSA ? 32 : 65;
  if (!(alg in IMPORT) || !(raw instanceof Uint8Array) || raw.length !== wanted
      || (alg === ES256 && raw[0] !== 0x04)) {
    throw new VerifyError("key", "not a usable public key");
  }
  try {
    return await crypto.subtle.importKey("raw", raw, IMPORT[alg], false, ["verify"]);
  } catch {
    throw new VerifyError("key", "not a usable public key");
  }
}

/** True when `signature` over `message` verifies under the imported key; never throws. */
export async function verifySignature(alg, key, signature, message) {
  try {
    return await crypto.subtle.verify(VERIFY[alg], key, signature, message);
  } catch {
    return false;
  }
}
