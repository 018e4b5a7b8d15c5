// Base45 (RFC 9285) decoding, strict: the QR text of a credential is "UC1:" + base45.
// Mirrors cardsvc/credential/base45.py: any character outside the alphabet, a length that
// leaves one character, a triple above 65535 or a final pair above 255 is refused.

import { VerifyError } from "./errors.js";

export const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const VALUE = new Map([...ALPHABET].map((c, i) => [c.charCodeAt(0), i]));

/** Decode base45 text to bytes; throws VerifyError("base45") on anything invalid. */
export function b45decode(text) {
  if (typeof text !== "string") throw new VerifyError("base45", "base45 input must be text");
  if (text.length % 3 === 1) throw new VerifyError("base45", "base45 length leaves a single character");
  const out = new Uint8Array(Math.floor(text.length / 3) * 2 + (text.length % 3 === 2 ? 1 : 0));
  let o = 0;
  for (let i = 0; i < text.length; i += 3) {
    const width = Math.min(3, text.length - i);
    const value = digits(text, i, width);
    if (width === 3) {
      if (value > 0xffff) throw new VerifyError("base45", "base45 triple above 65535");
      out[o++] = value >> 8;
      out[o++] = value & 0xff;
    } else {
      if (value > 0xff) throw new VerifyError("base45", "base45 final pair above 255");
      out[o++] = value;
    }
  }
  return out;
}

function digits(text, start, width) {
  let value = 0;
  for (let k = width - 1; k >= 0; k--) {
    const digit = VALUE.get(text.charCodeAt(start + k));
    if (digit === undefined) throw new VerifyError("base45", "character outside the base45 alphabet");
    value = value * 45 + digit;
  }
  return value;
}
