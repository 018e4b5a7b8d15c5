// Offline verification of cardsvc credentials in the browser — the partner page's entry point.
//
// Mirrors cardsvc/credential/verifier.py step for step, with the same statuses and reason codes
// (a differential test in tests/web/offline runs both on the same inputs). Needs a secure context
// (https:// or http://localhost) for WebCrypto; Ed25519 needs Chromium ≥ 137, Firefox ≥ 129 or
// Safari ≥ 17.
//
// API
//   const verifier = await createVerifier({ bundleBytes, anchors, clock, leewayMs })
//       bundleBytes  Uint8Array of the trust bundle (GET /v1/trust-bundle)
//       anchors      one anchor or a list: anchorFromCoseKey(bytes of `cardsvc trust anchor`)
//       clock        () => milliseconds since the epoch (default Date.now)
//       leewayMs     allowance for a device clock running behind (default 120000 = 2 minutes)
//     A bundle that fails to verify or parse does not throw: the verifier then answers "check"
//     (verifier.bundleError.reason = "bundle_signature" | "bundle_malformed").
//   await verifier.verify(input) → result
//       input   QR text ("UC1:…", typed or scanned) or the credential bytes read from a chip
//               (a Uint8Array; skips checks 1-2). Never throws for any string or bytes.
//       result  { status: "ok" | "nok" | "check", reason: null | code, cardNumber: null | "…",
//                 claims: null | {issuer, cardNumber, issuedAt, expiresAt, profile, keyVersion,
//                 categories, version} (only once the signature verified; times in seconds),
//                 checks: [{number, name, passed}] }
//   verifier.bundle → the verified Bundle (sequence, issuedAt, expiresAt, issuer, …) or null
//   await checkEligibility(list, cardNumber, today?) → { eligible, reason }
//       list    the JSON of GET /v1/programmes/{code}/eligibility (pseudonymous, no card numbers)
//       reason  null | "programme_not_running" | "not_on_list"  (the server's codes)
//
// Checklist (the first failing credential check decides): 1 prefix, 2 base45, 3 cose_structure,
// 4 claims, 5 bundle_signature, 6 bundle_freshness, 7 kid, 8 algorithm, 9 signature, 10 key_state,
// 11 validity (iat − leeway ≤ now < exp), 12 revocation, 13 issuer. "ok" only when all pass; "nok"
// with the failing check's reason; "check" when the credential passes but the bundle is stale or
// unverifiable — a stale bundle never yields "ok".

import { b45decode } from "./base45.js";
import { decodeExact } from "./cbor.js";
import { claimsFromMap } from "./claims.js";
import { decodeSign1, sigStructure, verifySignature } from "./cose.js";
import { loadBundle, toHex, fromHex } from "./bundle.js";
import { VerifyError } from "./errors.js";

export { anchorFromCoseKey, loadBundle } from "./bundle.js";
export { VerifyError } from "./errors.js";

export const QR_PREFIX = "UC1:";
export const MAX_QR_TEXT = 4 + (3 * 512) / 2;
export const MAX_CREDENTIAL_SIZE = 128;
export const DEFAULT_LEEWAY_MS = 2 * 60 * 1000;
export const CHECKS = Object.freeze([
  "prefix", "base45", "cose_structure", "claims", "bundle_signature", "bundle_freshness", "kid",
  "algorithm", "signature", "key_state", "validity", "revocation", "issuer",
]);
const SIGNATURE_STEP = 9;
const REASON_STEP = new Map(Object.entries({
  prefix: 1, too_large: 3, base45: 2, cbor: 3, trailing_bytes: 3, cose_structure: 3, claims: 4,
  unknown_kid: 7, algorithm_mismatch: 8, signature: 9, key_revoked: 10, key_window: 10,
  key_cutoff: 10, not_yet_valid: 11, expired: 11, revoked: 12, issuer: 13, bundle_stale: 6,
}));

/** Load (and verify) a bundle and return a verifier over it; never throws for a bad bundle. */
export async function createVerifier({ bundleBytes, anchors, clock = Date.now, leewayMs = DEFAULT_LEEWAY_MS }) {
  try {
    return new OfflineVerifier(await loadBundle(bundleBytes, anchors), { clock, leewayMs });
  } catch (error) {
    const reason = error instanceof VerifyError ? error.reason : "bundle_invalid";
    return new OfflineVerifier(null, { clock, leewayMs, bundleError: new VerifyError(reason, error.message) });
  }
}

export class OfflineVerifier {
  constructor(bundle, { clock = Date.now, leewayMs = DEFAULT_LEEWAY_MS, bundleError = null } = {}) {
    if (bundle === null && bundleError === null) throw new TypeError("give a bundle or the error that prevented loading one");
    Object.assign(this, { bundle, bundleError, clock, leewayMs });
    Object.freeze(this);
  }

  async verify(input) {
    const first = typeof input === "string" ? 1 : 3;
    if (first === 3 && !(input instanceof Uint8Array)) throw new TypeError("verify() takes QR text or credential bytes");
    let parsed;
    try {
      parsed = parseCredential(first === 1 ? fromQrText(input) : input);
    } catch (error) {
      return result("nok", reasonOf(error), first, null, null);
    }
    if (this.bundle === null) return result("check", this.bundleError.reason, first, parsed.claims.cardNumber, null);
    return this.verifyParsed(parsed, first);
  }

  async verifyParsed(parsed, first) {
    const now = this.clock();
    const stale = !this.bundle.isFresh(now);
    const { claims } = parsed;
    const reason = await this.firstFailure(parsed, now);
    if (reason !== null) {
      const trusted = REASON_STEP.get(reason) > SIGNATURE_STEP ? claims : null;
      return result("nok", reason, first, claims.cardNumber, trusted, stale);
    }
    if (stale) return result("check", "bundle_stale", first, claims.cardNumber, claims, true);
    return result("ok", null, first, claims.cardNumber, claims);
  }

  /** Checks 7-13 in order: the first failing reason code, or null. */
  async firstFailure({ sign1, claims }, now) {
    const key = this.bundle.key(sign1.kid);
    if (key === null) return "unknown_kid";
    if (sign1.alg !== key.alg) return "algorithm_mismatch";
    const message = sigStructure(sign1.protected, sign1.payload);
    if (!(await verifySignature(key.alg, key.cryptoKey, sign1.signature, message))) return "signature";
    const keyProblem = keyState(key, claims.issuedAt);
    if (keyProblem !== null) return keyProblem;
    if (now + this.leewayMs < claims.issuedAt * 1000) return "not_yet_valid";
    if (now >= claims.expiresAt * 1000) return "expired";
    if (this.bundle.isRevoked(claims.cardNumber)) return "revoked";
    if (this.bundle.issuer !== null && claims.issuer !== this.bundle.issuer) return "issuer";
    return null;
  }
}

function keyState(key, issuedAt) {
  if (key.state === "revoked") return "key_revoked";
  if (issuedAt < key.notBefore) return "key_window";
  if (key.notAfter !== null && issuedAt >= key.notAfter) return "key_cutoff";
  return null;
}

/** Checks 1-2: the credential bytes inside QR text. */
export function fromQrText(text) {
  if (text.length > MAX_QR_TEXT && codePoints(text) > MAX_QR_TEXT) throw new VerifyError("too_large", "QR text too long");
  if (!text.startsWith(QR_PREFIX)) throw new VerifyError("prefix", "QR text does not start with UC1:");
  return b45decode(text.slice(QR_PREFIX.length));
}

function codePoints(text) {
  if (text.length > 2 * MAX_QR_TEXT) return text.length;
  return [...text].length;
}

/** Checks 3-4: COSE structure and CWT claims; trusts nothing. */
export function parseCredential(raw) {
  const sign1 = decodeSign1(raw, MAX_CREDENTIAL_SIZE);
  let claimsMap;
  try {
    claimsMap = decodeExact(sign1.payload);
  } catch {
    throw new VerifyError("claims", "CWT claims are not valid CBOR");
  }
  return { sign1, claims: claimsFromMap(claimsMap) };
}

function reasonOf(error) {
  if (error instanceof VerifyError && REASON_STEP.has(error.reason)) return error.reason;
  return "cbor"; // an unexpected failure while parsing hostile bytes still means "malformed"
}

function result(status, reason, first, cardNumber, claims, stale = false) {
  return Object.freeze({ status, reason, cardNumber, claims, checks: checks(first, reason, stale) });
}

/** The checks run: a failing credential check ends the list; bundle problems do not. */
function checks(first, reason, stale) {
  const failed = reason === null ? null : REASON_STEP.get(reason) ?? 5;
  const last = failed === null || failed === 6 ? CHECKS.length : failed;
  const out = [];
  for (let n = first; n <= last; n++) {
    out.push(Object.freeze({ number: n, name: CHECKS[n - 1], passed: n !== failed && !(stale && n === 6) }));
  }
  return Object.freeze(out);
}

/** ``YYYY-MM-DD`` of the instant ``at`` in the IANA zone ``timeZone`` (the list's ``timezone``). */
export function localDay(at, timeZone) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(at);
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")}`;
}

/** Offline eligibility from the pseudonymous list: HMAC-SHA256(list_key, card number)[:n]. */
export async function checkEligibility(list, cardNumber, today = new Date()) {
  if (typeof cardNumber !== "string" || !/^[0-9]{1,16}$/.test(cardNumber)) return { eligible: false, reason: "not_on_list" };
  const day = localDay(today, list.timezone ?? "UTC"); // the federation's local date, as the server compares
  if (!(list.starts_on <= day && day <= list.ends_on)) return { eligible: false, reason: "programme_not_running" };
  const key = await crypto.subtle.importKey("raw", fromHex(list.list_key), { name: "HMAC", hash: "SHA-256" },
    false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(cardNumber)));
  const pseudonym = toHex(mac.subarray(0, list.pseudonym_bytes));
  const listed = new Set(list.entries.map((e) => e.toLowerCase())).has(pseudonym);
  return listed ? { eligible: true, reason: null } : { eligible: false, reason: "not_on_list" };
}
