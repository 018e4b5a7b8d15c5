"""Credentials, bundles and anchors built with the Python code, and both verifiers run on them.

``python_verdict`` runs ``cardsvc.credential.OfflineVerifier``; ``js_verdicts`` runs the browser
modules (``verify.js``) in a page on the same inputs, bundles, anchors and clock. Both give the
same plain shape, so a test compares them with ``==``. Claims, key records, anchors and bundles
come from tests/support/credentials.py, the builders tests/credential uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from playwright.sync_api import Page

from cardsvc.credential import (
    Algorithm,
    IssuerKey,
    KeyState,
    OfflineVerifier,
    SoftwareSigner,
    TrustAnchor,
    VerificationResult,
)
from tests.support.credentials import (
    BUNDLE_KID,
    ED_KID,
    ES_KID,
    ISSUER,
    NOW,
    anchor_of,
    issuer_key,
    make_claims,
    new_signer,
    signed_bundle,
)

claims = make_claims  # the offline tests' name for the shared builder (tests/support/credentials.py)


@dataclass(frozen=True)
class Keys:
    """Issuer keys (EdDSA, ES256, retired with a cut-off, revoked, late window) and bundle keys."""

    ed: SoftwareSigner
    es: SoftwareSigner
    retired: SoftwareSigner
    revoked: SoftwareSigner
    late: SoftwareSigner
    stranger: SoftwareSigner
    bundle_ed: SoftwareSigner
    bundle_es: SoftwareSigner
    bundle_impostor: SoftwareSigner

    @classmethod
    def generate(cls) -> Keys:
        ed, es = Algorithm.eddsa, Algorithm.es256
        return cls(
            new_signer(ed, ED_KID), new_signer(es, ES_KID),
            new_signer(ed, b"\x33"), new_signer(es, b"\x44"),
            new_signer(ed, b"\x55"), new_signer(ed, b"\x99"),
            new_signer(ed, BUNDLE_KID), new_signer(es, b"\xb2"),
            new_signer(ed, BUNDLE_KID),  # same kid as the real bundle key
        )

    def records(self) -> list[IssuerKey]:
        return [
            issuer_key(self.ed), issuer_key(self.es),
            issuer_key(self.retired, state=KeyState.retired, not_after=NOW - timedelta(days=10)),
            issuer_key(self.revoked, state=KeyState.revoked),
            issuer_key(self.late, not_before=NOW - timedelta(days=2)),
        ]

    def anchors(self) -> list[TrustAnchor]:
        return [anchor_of(s) for s in (self.bundle_ed, self.bundle_es)]

    def bundle(self, signer: SoftwareSigner | None = None, *, issued: datetime = NOW - timedelta(hours=1),
               expires: datetime = NOW + timedelta(days=7), issuer: str | None = ISSUER) -> bytes:
        return signed_bundle(signer or self.bundle_ed, self.records(), issued_at=issued, expires_at=expires,
                             issuer=issuer)


def python_verdict(bundle: bytes, anchors: list[TrustAnchor], now: datetime,
                   credential: str | bytes) -> dict[str, Any]:
    verifier = OfflineVerifier.from_bundle_bytes(bundle, anchors, clock=lambda: now)
    return plain(verifier.verify(credential))


def plain(result: VerificationResult) -> dict[str, Any]:
    c = result.claims
    return {
        "status": result.status.value, "reason": result.reason, "card_number": result.card_number,
        "claims": None if c is None else {
            "issuer": c.issuer, "cardNumber": c.card_number, "issuedAt": int(c.issued_at.timestamp()),
            "expiresAt": int(c.expires_at.timestamp()), "profile": c.profile, "keyVersion": c.key_version,
            "categories": list(c.categories), "version": c.version,
        },
        "checks": [[k.number, k.name, k.passed] for k in result.checks],
    }


@dataclass(frozen=True)
class Case:
    bundle: str  # a key of the bundles mapping
    credential: str | bytes
    now: datetime = NOW

    def as_js(self) -> dict[str, Any]:
        text = self.credential if isinstance(self.credential, str) else None
        raw = self.credential.hex() if isinstance(self.credential, bytes) else None
        return {"bundle": self.bundle, "text": text, "hex": raw, "now_ms": int(self.now.timestamp() * 1000)}


_JS_RUN = """async ({bundles, anchors, cases}) => {
  const m = await import("/js/offline/verify.js");
  const { fromHex } = await import("/js/offline/bundle.js");
  const anchorList = anchors.map((a) => m.anchorFromCoseKey(fromHex(a)));
  const loaded = {};
  for (const [name, hex] of Object.entries(bundles)) {
    try { loaded[name] = { bundle: await m.loadBundle(fromHex(hex), anchorList), error: null }; }
    catch (error) {
      loaded[name] = { bundle: null, error: new m.VerifyError(error.reason ?? "bundle_invalid") };
    }
  }
  const out = [];
  for (const c of cases) {
    const { bundle, error } = loaded[c.bundle];
    const verifier = new m.OfflineVerifier(bundle, { clock: () => c.now_ms, bundleError: error });
    try {
      const r = await verifier.verify(c.text !== null ? c.text : fromHex(c.hex));
      out.push({ status: r.status, reason: r.reason, card_number: r.cardNumber,
                 claims: r.claims && { ...r.claims, categories: [...r.claims.categories] },
                 checks: r.checks.map((k) => [k.number, k.name, k.passed]) });
    } catch (thrown) {
      out.push({ threw: String(thrown && thrown.stack || thrown) });
    }
  }
  return out;
}"""


def js_verdicts(page: Page, bundles: dict[str, bytes], anchors: list[TrustAnchor],
                cases: list[Case]) -> list[dict[str, Any]]:
    args = {"bundles": {k: v.hex() for k, v in bundles.items()},
            "anchors": [a.to_cose_key().hex() for a in anchors], "cases": [c.as_js() for c in cases]}
    result: list[dict[str, Any]] = page.evaluate(_JS_RUN, args)
    return result
