"""The browser's offline verifier (verify.js) gives the Python verifier's verdict, reason, card
number, claims and checklist on every kind of credential and bundle the partner can meet."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import cbor2
import pytest
from playwright.sync_api import Page

from cardsvc.credential import SoftwareSigner, issue_credential, to_qr_text
from cardsvc.credential.base45 import b45encode

from .material import NOW, Case, Keys, claims, js_verdicts, python_verdict


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture(scope="module")
def bundles(keys: Keys) -> dict[str, bytes]:
    good = keys.bundle()
    tampered = bytearray(good)
    tampered[len(good) // 2] ^= 0x01
    return {
        "good": good,
        "good_es256": keys.bundle(keys.bundle_es),
        "no_issuer": keys.bundle(issuer=None),
        "stale": keys.bundle(issued=NOW - timedelta(days=8), expires=NOW - timedelta(hours=1)),
        "not_yet_fresh": keys.bundle(issued=NOW + timedelta(hours=1), expires=NOW + timedelta(days=8)),
        "wrong_key": keys.bundle(keys.bundle_impostor),
        "unknown_anchor": keys.bundle(keys.stranger),
        "tampered": bytes(tampered),
        "garbage": b"\xd2\x84\x40\xa0\x41\x00\x40",
        "empty": b"",
    }


def _qr(signer: SoftwareSigner, *args: str, **changes: Any) -> str:
    return to_qr_text(issue_credential(signer, claims(*args, **changes)))


def _unprotected(keys: Keys, header: dict[Any, Any]) -> bytes:
    """A genuine short credential whose (unsigned) unprotected header someone filled in."""
    protected, _, payload, signature = cbor2.loads(issue_credential(keys.ed, claims("7"))).value
    return cbor2.dumps(cbor2.CBORTag(18, [protected, header, payload, signature]))


def _cases(keys: Keys) -> dict[str, Case]:
    ed_raw = issue_credential(keys.ed, claims())
    ed, es = to_qr_text(ed_raw), _qr(keys.es, "7")
    bad_sig = bytearray(ed_raw)
    bad_sig[-1] ^= 0x80
    bad_payload = bytearray(ed_raw)
    bad_payload[ed_raw.index(b"202600012345") + 3] ^= 0x01  # "2026" → "2027": still digits
    swapped_alg = bytearray(issue_credential(keys.es, claims()))
    swapped_alg[8] = 0x11  # ES256-signed, kid of the EdDSA key
    return {
        "ed25519 ok": Case("good", ed),
        "es256 ok": Case("good", es),
        "chip bytes ok": Case("good", ed_raw),
        "categories ok": Case("good", _qr(keys.ed, "2026", categories=("A", "b-2"))),
        "es256 bundle ok": Case("good_es256", ed),
        "bundle without issuer": Case("no_issuer", _qr(keys.ed, issuer="XYZ")),
        "retired key before cut-off ok": Case("good", to_qr_text(issue_credential(
            keys.retired, claims(issued_at=NOW - timedelta(days=20))))),
        "leeway absorbs a clock behind": Case("good", ed, NOW - timedelta(days=1, seconds=90)),
        "tampered signature": Case("good", to_qr_text(bytes(bad_sig))),
        "tampered payload": Case("good", to_qr_text(bytes(bad_payload))),
        "tampered payload, chip": Case("good", bytes(bad_payload)),
        "wrong kid": Case("good", _qr(keys.stranger)),
        "algorithm mismatch": Case("good", bytes(swapped_alg)),
        "revoked card": Case("good", _qr(keys.ed, "202600000007")),
        "revoked card, leading zeros": Case("good", _qr(keys.ed, "0000123")),
        "not revoked: same digits without zeros": Case("good", _qr(keys.ed, "123")),
        "expired card": Case("good", ed, NOW + timedelta(days=366)),
        "expires exactly now": Case("good", ed, NOW + timedelta(days=365)),
        "not yet valid": Case("good", ed, NOW - timedelta(days=1, minutes=3)),
        "revoked key": Case("good", _qr(keys.revoked)),
        "retired key after cut-off": Case("good", _qr(keys.retired)),
        "issued before key window": Case("good", to_qr_text(issue_credential(
            keys.late, claims(issued_at=NOW - timedelta(days=3))))),
        "other issuer": Case("good", _qr(keys.ed, issuer="OTHER")),
        "stale bundle, good card": Case("stale", ed),
        "stale bundle, bad card": Case("stale", to_qr_text(bytes(bad_sig))),
        "stale bundle, expired card": Case("stale", ed, NOW + timedelta(days=400)),
        "bundle not yet fresh": Case("not_yet_fresh", es),
        "wrong bundle key": Case("wrong_key", ed),
        "bundle from unknown anchor": Case("unknown_anchor", ed),
        "tampered bundle": Case("tampered", ed),
        "malformed bundle": Case("garbage", ed),
        "empty bundle": Case("empty", ed),
        "malformed card, bad bundle": Case("wrong_key", "UC1:ZZZ"),
        "wrong prefix": Case("good", "HC1:" + ed[4:]),
        "empty text": Case("good", ""),
        "base45 bad character": Case("good", ed[:-1] + "a"),
        "base45 single trailing char": Case("good", ed + "0"),
        "base45 triple above 65535": Case("good", "UC1:GGW"),
        "text too long": Case("good", "UC1:" + "0" * 800),
        "non-ascii text": Case("good", "UC1:中文"),
        "truncated": Case("good", to_qr_text(ed_raw[:-10])),
        "trailing bytes": Case("good", to_qr_text(ed_raw + b"\x00")),
        "too large": Case("good", ed_raw + bytes(40)),
        "untagged": Case("good", ed_raw[1:]),
        "not cbor": Case("good", "UC1:" + b45encode(b"\xff\xff\xff")),
        "stray break byte": Case("good", b"\xd2\x84\xff\xa0\x40\x40"),
        "crit as 2.0 in unprotected": Case("good", _unprotected(keys, {2.0: [1]})),
        "alg as true in unprotected": Case("good", _unprotected(keys, {True: -8})),
        "other label in unprotected ok": Case("good", _unprotected(keys, {99: 1})),
        "payload not claims": Case("good", b"\xd2\x84\x43\xa1\x01\x27\xa1\x04\x41\x11\x41\x00\x40"),
    }


def test_js_verdicts_equal_python_for_every_case(offline_page: Page, keys: Keys,
                                                 bundles: dict[str, bytes]) -> None:
    cases = _cases(keys)
    anchors = keys.anchors()
    expected = [python_verdict(bundles[c.bundle], anchors, c.now, c.credential) for c in cases.values()]
    got = js_verdicts(offline_page, bundles, anchors, list(cases.values()))
    pairs = zip(cases, expected, got, strict=True)
    mismatches = {name: (want, have) for name, want, have in pairs if want != have}
    assert not mismatches, mismatches
    # the cases cover every verdict and the reasons the brief names
    reasons = {(v["status"], v["reason"]) for v in expected}
    for wanted in [("ok", None), ("nok", "signature"), ("nok", "unknown_kid"), ("nok", "revoked"),
                   ("nok", "expired"), ("nok", "not_yet_valid"), ("check", "bundle_stale"),
                   ("check", "bundle_signature"), ("check", "bundle_malformed"), ("nok", "base45"),
                   ("nok", "cbor"), ("nok", "claims"), ("nok", "algorithm_mismatch"), ("nok", "key_revoked"),
                   ("nok", "key_cutoff"), ("nok", "key_window"), ("nok", "issuer"), ("nok", "prefix"),
                   ("nok", "too_large"), ("nok", "trailing_bytes"), ("nok", "cose_structure")]:
        assert wanted in reasons, wanted


def test_indefinite_lengths_are_refused_as_cbor(offline_page: Page, keys: Keys,
                                                bundles: dict[str, bytes]) -> None:
    """The one intended difference: cbor2 accepts indefinite lengths, the browser's decoder refuses
    them (definite lengths only). Our issuer never emits them; the browser fails closed (NOK
    ``cbor``) even where cbor2 verifies a genuine credential's re-encoded envelope."""
    ed_raw = issue_credential(keys.ed, claims())
    reencoded = b"\xd2\x9f" + ed_raw[2:] + b"\xff"  # the same four fields in an indefinite array
    cases = [Case("good", b"\xd2\x9f\xff"), Case("good", reencoded), Case("good", to_qr_text(reencoded))]
    python = [python_verdict(bundles["good"], keys.anchors(), NOW, c.credential) for c in cases]
    browser = js_verdicts(offline_page, bundles, keys.anchors(), cases)
    assert [p["status"] for p in python] == ["nok", "ok", "ok"]  # cbor2 even verifies the re-encoding
    assert [(b["status"], b["reason"]) for b in browser] == [("nok", "cbor")] * 3
