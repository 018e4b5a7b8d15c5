// The CWT claims of a card credential, parsed as strictly as cardsvc/credential/claims.py:
// exactly iss (1), exp (4), iat (6), cti (7, the card number as ASCII digits) and the cardsvc
// claim (-65537) = [version 1, profile, key_version, [categories…]?]. Anything else: "claims".

import { VerifyError } from "./errors.js";

const CLAIM_ISS = 1;
const CLAIM_EXP = 4;
const CLAIM_IAT = 6;
const CLAIM_CTI = 7;
const CLAIM_CARDSVC = -65537;
const MAX_TIME = 253402300799; // 9999-12-31T23:59:59Z
const CARD_NUMBER = /^[0-9]{1,16}$/;
const CODE = /^[\x21-\x7e]{1,32}$/;

/** Claims from a decoded CWT map: {issuer, cardNumber, issuedAt, expiresAt (NumericDate seconds),
 * profile, keyVersion, categories, version}; throws VerifyError("claims"). */
export function claimsFromMap(claims) {
  if (!(claims instanceof Map) || claims.size !== 5) bad("exactly iss, cti, iat, exp and the cardsvc claim");
  const issuer = claims.get(CLAIM_ISS);
  const cti = claims.get(CLAIM_CTI);
  const iat = claims.get(CLAIM_IAT);
  const exp = claims.get(CLAIM_EXP);
  if (!(typeof issuer === "string" && isDigits(cti) && isTime(iat) && isTime(exp))) {
    bad("iss, cti, iat or exp missing or of the wrong type");
  }
  const [profile, keyVersion, categories] = privateFields(claims.get(CLAIM_CARDSVC));
  const cardNumber = cti.length > 16 ? "" : String.fromCharCode(...cti);
  if (!(CARD_NUMBER.test(cardNumber) && CODE.test(issuer) && CODE.test(profile))) {
    bad("card number must be 1-16 digits; issuer and profile short printable ASCII codes");
  }
  if (!categories.every((c) => CODE.test(c))) bad("category codes must be short printable ASCII codes");
  if (!(keyVersion >= 0 && keyVersion <= 0xffff)) bad("key version out of range");
  if (Number(exp) <= Number(iat)) bad("expires_at must be after issued_at");
  return Object.freeze({
    issuer, cardNumber, issuedAt: Number(iat), expiresAt: Number(exp), profile,
    keyVersion: Number(keyVersion), categories: Object.freeze(categories), version: 1,
  });
}

function privateFields(fields) {
  if (!Array.isArray(fields) || fields.length < 3 || fields.length > 4) {
    bad("cardsvc claim must be [version, profile, key_version, categories?]");
  }
  if (fields[0] !== 1) bad("unsupported credential version");
  const [, profile, keyVersion] = fields;
  if (typeof profile !== "string" || !isInteger(keyVersion)) bad("cardsvc claim fields of the wrong type");
  if (fields.length === 3) return [profile, keyVersion, []];
  const categories = fields[3];
  if (!Array.isArray(categories) || categories.length === 0 || !categories.every((c) => typeof c === "string")) {
    bad("categories must be a non-empty list of text codes");
  }
  return [profile, keyVersion, [...categories]];
}

function isDigits(value) {
  return value instanceof Uint8Array && value.length > 0 && value.every((b) => b >= 0x30 && b <= 0x39);
}

function isInteger(value) {
  return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
}

function isTime(value) {
  return isInteger(value) && value >= 0 && value <= MAX_TIME;
}

function bad(message) {
  throw new VerifyError("claims", message);
}
