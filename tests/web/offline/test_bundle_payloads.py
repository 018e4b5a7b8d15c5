"""Bundles whose signature is genuine but whose payload is off-form (as only a faulty or hostile
bundle signer could make them): the browser accepts and refuses exactly what the Python parser does."""

from __future__ import annotations

import struct
from datetime import timedelta
from typing import Any

import cbor2
import pytest
from playwright.sync_api import Page

from cardsvc.credential import issue_credential, to_qr_text
from cardsvc.credential.cose import encode_sign1, protected_header, sig_structure
from cardsvc.credential.keys import key_to_map

from .material import NOW, Case, Keys, claims, js_verdicts, python_verdict

Payload = dict[Any, Any]


def _baseline(keys: Keys) -> Payload:
    words = sorted(int(n.ljust(16, "F"), 16) for n in ("202600000007", "0000123"))
    issued, expires = NOW - timedelta(hours=1), NOW + timedelta(days=7)
    return {1: 1, 2: 7, 3: int(issued.timestamp()), 4: int(expires.timestamp()), 5: "SZGH",
            6: [key_to_map(k) for k in keys.records()], 7: b"".join(struct.pack(">Q", w) for w in words)}


def _variants(keys: Keys) -> dict[str, Payload]:
    base = _baseline(keys)
    ed_key = key_to_map(keys.records()[0])

    def with_key(**changes: Any) -> Payload:
        record = {**ed_key, **{int(k[1:]): v for k, v in changes.items()}}
        return {**base, 6: [record, *base[6][1:]]}

    revoked = base[7]
    return {
        "baseline": base,
        "format 2": {**base, 1: 2},
        "format 1.0": {**base, 1: 1.0},
        "format true": {**base, 1: True},
        "missing revoked": {k: v for k, v in base.items() if k != 7},
        "extra field": {**base, 8: 0},
        "unsorted revoked": {**base, 7: revoked[8:] + revoked[:8]},
        "duplicate revoked": {**base, 7: revoked[:8] * 2},
        "ragged revoked": {**base, 7: revoked + b"\x00"},
        "revoked as list": {**base, 7: [revoked]},
        "duplicate kid": {**base, 6: [ed_key, ed_key]},
        "keys not a list": {**base, 6: ed_key},
        "no keys": {**base, 6: []},
        "unknown state": with_key(k4="suspended"),
        "alg as label": with_key(k2="EdDSA"),
        "alg as odd label": with_key(k2="eddsa"),
        "unknown alg": with_key(k2=999),
        "alg float": with_key(k2=-8.0),
        "short public key": with_key(k3=b"\x01" * 31),
        "empty kid": with_key(k1=b""),
        "not_before float": with_key(k5=1.5),
        "not_after text": with_key(k6="never"),
        "extra key field": {**base, 6: [{**ed_key, 7: 0}]},
        "negative sequence": {**base, 2: -1},
        "boolean sequence": {**base, 2: True},
        "issuer int": {**base, 5: 5},
        "issuer null": {**base, 5: None},
        "issued float": {**base, 3: float(base[3])},
        "expires beyond 9999": {**base, 4: 253402300800},
        "payload a list": [base],  # type: ignore[dict-item]
        "text keys": {str(k): v for k, v in base.items()},
    }


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


def _signed(keys: Keys, payload: Any) -> bytes:
    signer = keys.bundle_ed
    protected = protected_header(signer.alg, signer.kid)
    body = cbor2.dumps(payload)
    return encode_sign1(protected, body, signer.sign(sig_structure(protected, body)))


def test_signed_off_form_payloads_get_the_python_verdict(offline_page: Page, keys: Keys) -> None:
    bundles = {name: _signed(keys, payload) for name, payload in _variants(keys).items()}
    credential = to_qr_text(issue_credential(keys.ed, claims()))
    cases = [Case(name, credential) for name in bundles]
    python = [python_verdict(bundles[c.bundle], keys.anchors(), c.now, c.credential) for c in cases]
    browser = js_verdicts(offline_page, bundles, keys.anchors(), cases)
    differ = {c.bundle: (p["status"], p["reason"], b.get("status"), b.get("reason"))
              for c, p, b in zip(cases, python, browser, strict=True) if p != b}
    assert not differ, differ
    accepted = {c.bundle for c, p in zip(cases, python, strict=True) if p["status"] != "check"}
    # Python's equality lets 1.0 and True stand for format 1, and algorithm labels in any case
    assert accepted == {"baseline", "format 1.0", "format true", "alg as label", "alg as odd label",
                        "issuer null", "no keys"}
