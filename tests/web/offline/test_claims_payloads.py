"""Credentials whose claims are off-form but genuinely signed (what only a faulty issuer could
make): the browser parses, accepts and refuses them as the Python verifier does — including map
keys that Python's dict equality merges (``true`` or ``1.0`` standing for the key 1)."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from playwright.sync_api import Page

from cardsvc.credential import to_qr_text
from cardsvc.credential.cose import encode_sign1, protected_header, sig_structure

from .material import Case, Keys, claims, js_verdicts, python_verdict


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


def _variants() -> dict[str, Any]:
    base = claims("2026").to_cbor_map()
    private = base[-65537]
    return {
        "baseline": base,
        "true as key 1": {True if k == 1 else k: v for k, v in base.items()},
        "1.0 as key 1": {1.0 if k == 1 else k: v for k, v in base.items()},
        "text key": {"1" if k == 1 else k: v for k, v in base.items()},
        "extra claim": {**base, 8: 0},
        "missing cardsvc claim": {k: v for k, v in base.items() if k != -65537},
        "iat float": {**base, 6: float(base[6])},
        "iat true": {**base, 6: True},
        "exp before iat": {**base, 4: base[6]},
        "exp beyond 9999": {**base, 4: 253402300800},
        "cti text": {**base, 7: "2026"},
        "cti not digits": {**base, 7: b"20a6"},
        "cti 17 digits": {**base, 7: b"1" * 17},
        "cti empty": {**base, 7: b""},
        "issuer with space": {**base, 1: "SZ GH"},
        "issuer 33 chars": {**base, 1: "S" * 33},
        "version true": {**base, -65537: [True, *private[1:]]},
        "version 1.0": {**base, -65537: [1.0, *private[1:]]},
        "version 2": {**base, -65537: [2, *private[1:]]},
        "key version 65536": {**base, -65537: [1, private[1], 65536]},
        "key version -1": {**base, -65537: [1, private[1], -1]},
        "key version text": {**base, -65537: [1, private[1], "1"]},
        "categories empty": {**base, -65537: [*private, []]},
        "categories ok": {**base, -65537: [*private, ["A", "b-2"]]},
        "category with space": {**base, -65537: [*private, ["a b"]]},
        "category not text": {**base, -65537: [*private, [1]]},
        "private five fields": {**base, -65537: [*private, ["A"], 0]},
        "private not a list": {**base, -65537: {1: 1}},
        "claims a list": [base],
    }


def _signed(keys: Keys, payload: Any) -> bytes:
    signer = keys.ed
    protected = protected_header(signer.alg, signer.kid)
    body = cbor2.dumps(payload)
    return encode_sign1(protected, body, signer.sign(sig_structure(protected, body)))


def test_signed_off_form_claims_get_the_python_verdict(offline_page: Page, keys: Keys) -> None:
    bundle = keys.bundle()
    cases = {name: Case("good", to_qr_text(_signed(keys, payload))) for name, payload in _variants().items()}
    python = {n: python_verdict(bundle, keys.anchors(), c.now, c.credential) for n, c in cases.items()}
    answers = js_verdicts(offline_page, {"good": bundle}, keys.anchors(), list(cases.values()))
    browser = dict(zip(cases, answers, strict=True))
    differ = {n: (python[n]["reason"], browser[n].get("reason")) for n in cases if python[n] != browser[n]}
    assert not differ, differ
    accepted = {n for n, v in python.items() if v["status"] == "ok"}
    assert accepted == {"baseline", "true as key 1", "1.0 as key 1", "categories ok"}
