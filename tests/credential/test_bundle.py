"""Trust bundle: size and build time at the target scale, O(log n) revocation, malformed input."""

from __future__ import annotations

import random
from datetime import timedelta

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycose.keys import CoseKey

from cardsvc.credential import (
    Algorithm,
    SoftwareSigner,
    TrustAnchor,
    TrustBundle,
    build_trust_bundle,
)
from cardsvc.credential.bundle import card_number_word
from cardsvc.credential.cose import encode_sign1, protected_header, sig_structure
from cardsvc.errors import BundleError
from tests.support.credentials import NOW, issuer_key

ISSUED_CARDS = 1_000_000
REVOKED_CARDS = 20_000


def _signed(signer: SoftwareSigner, payload: bytes) -> bytes:
    protected = protected_header(signer.alg, signer.kid)
    return encode_sign1(protected, payload, signer.sign(sig_structure(protected, payload)))


def test_target_scale_size(signer: SoftwareSigner, bundle_signer: SoftwareSigner,
                                          anchor: TrustAnchor) -> None:
    rng = random.Random(8)
    issued = rng.sample(range(10**11, 10**12), ISSUED_CARDS)
    revoked = [str(n) for n in rng.sample(issued, REVOKED_CARDS)]
    raw = build_trust_bundle(bundle_signer, [issuer_key(signer)], revoked, 1, NOW,
                             NOW + timedelta(days=7))
    assert len(raw) <= 400_000, len(raw)  # build time is measured in tools/bench_credential.py
    bundle = TrustBundle.load(raw, anchor)
    assert len(bundle.revoked) == REVOKED_CARDS
    assert all(bundle.is_revoked(n) for n in revoked[:500])
    kept = [str(n) for n in issued[:2000] if str(n) not in set(revoked)]
    assert not any(bundle.is_revoked(n) for n in kept)


@settings(max_examples=50, deadline=None)
@given(st.sets(st.from_regex(r"[0-9]{1,16}", fullmatch=True), max_size=60),
       st.lists(st.from_regex(r"[0-9]{1,16}", fullmatch=True), max_size=30))
def test_revocation_lookup_matches_a_set(revoked: set[str], probes: list[str]) -> None:
    signer = SoftwareSigner.generate(kid=b"\x01")
    anchor = TrustAnchor(signer.kid, signer.alg, signer.public_key_bytes())
    raw = build_trust_bundle(signer, [issuer_key(signer)], revoked, 1, NOW, NOW + timedelta(days=1))
    bundle = TrustBundle.load(raw, anchor)
    for number in [*probes, *revoked]:
        assert bundle.is_revoked(number) == (number in revoked)


def test_card_number_word_is_injective_and_keeps_leading_zeros() -> None:
    numbers = ["0", "00", "001", "01", "1", "10", "9999999999999999", "0000000000000000"]
    words = [card_number_word(n) for n in numbers]
    assert len(set(words)) == len(numbers)
    assert card_number_word("0123") == 0x0123_FFFF_FFFF_FFFF
    with pytest.raises(ValueError, match="card number"):
        card_number_word("12345678901234567")


def test_bundle_fields_survive(bundle: TrustBundle, signer: SoftwareSigner) -> None:
    assert bundle.sequence == 7 and bundle.issuer == "SZGH"
    assert bundle.key(signer.kid) is not None and bundle.key(b"\x00") is None
    assert bundle.is_revoked("not a number")  # fails closed (see below)


@pytest.mark.parametrize(
    ("keys", "revoked", "sequence", "days"),
    [([], (), 1, 1), (None, ("12x",), 1, 1), (None, (), -1, 1), (None, (), 1, 0)],
)
def test_build_refuses_bad_input(signer: SoftwareSigner, bundle_signer: SoftwareSigner,
                                 keys: list[object] | None, revoked: tuple[str, ...],
                                 sequence: int, days: int) -> None:
    with pytest.raises(BundleError):
        build_trust_bundle(bundle_signer, [issuer_key(signer)] if keys is None else keys,  # type: ignore[arg-type]
                           revoked, sequence, NOW, NOW + timedelta(days=days))


def _payload(signer: SoftwareSigner, **changes: object) -> dict[int, object]:
    key = issuer_key(signer)
    from cardsvc.credential.keys import key_to_map

    payload: dict[int, object] = {1: 1, 2: 1, 3: 1_700_000_000, 4: 1_800_000_000, 5: None,
                                  6: [key_to_map(key)], 7: b""}
    for name, value in changes.items():
        payload[int(name[1:])] = value
    return payload


@pytest.mark.parametrize(
    "changes",
    [
        {"k1": 2},  # unknown format
        {"k2": -1},  # negative sequence
        {"k2": True},
        {"k3": "yesterday"},
        {"k4": 2**70},
        {"k5": 5},
        {"k6": "keys"},
        {"k6": [{1: b"\x01"}]},
        {"k6": [{1: b"\x01", 2: -8, 3: b"\x00" * 31, 4: "active", 5: 0, 6: None}]},
        {"k6": [{1: b"\x01", 2: -35, 3: b"\x00" * 32, 4: "active", 5: 0, 6: None}]},
        {"k6": [{1: b"\x01", 2: -8, 3: b"\x00" * 32, 4: "dormant", 5: 0, 6: None}]},
        {"k7": b"\x00" * 7},  # not whole words
        {"k7": b"\x00" * 8 + b"\x00" * 8},  # duplicate
        {"k7": b"\x00" * 7 + b"\x02" + b"\x00" * 7 + b"\x01"},  # unsorted
        {"k8": 1},  # extra field
    ],
)
def test_malformed_signed_payload_is_refused(bundle_signer: SoftwareSigner, anchor: TrustAnchor,
                                             signer: SoftwareSigner, changes: dict[str, object]) -> None:
    raw = _signed(bundle_signer, cbor2.dumps(_payload(signer, **changes)))
    with pytest.raises(BundleError) as info:
        TrustBundle.load(raw, anchor)
    assert info.value.reason == "bundle_malformed"


def test_duplicate_kid_is_refused(bundle_signer: SoftwareSigner, anchor: TrustAnchor,
                                  signer: SoftwareSigner) -> None:
    payload = _payload(signer)
    payload[6] = [*payload[6], *payload[6]]  # type: ignore[misc]
    with pytest.raises(BundleError, match="duplicate_kid"):
        TrustBundle.load(_signed(bundle_signer, cbor2.dumps(payload)), anchor)


def test_well_formed_signed_payload_loads(bundle_signer: SoftwareSigner, anchor: TrustAnchor,
                                          signer: SoftwareSigner) -> None:
    bundle = TrustBundle.load(_signed(bundle_signer, cbor2.dumps(_payload(signer))), anchor)
    assert bundle.sequence == 1 and bundle.keys[0].kid == signer.kid


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\xd2\x80", b"\xd2\x84\x40\xa0\x40\x40"])
def test_bundle_structure_errors(raw: bytes, anchor: TrustAnchor) -> None:
    with pytest.raises(BundleError):
        TrustBundle.load(raw, anchor)


@pytest.mark.parametrize("fixture", ["signer", "es256_signer"])
def test_anchor_is_a_standard_cose_key(fixture: str, request: pytest.FixtureRequest) -> None:
    key_signer: SoftwareSigner = request.getfixturevalue(fixture)
    anchor = TrustAnchor(key_signer.kid, key_signer.alg, key_signer.public_key_bytes())
    encoded = anchor.to_cose_key()
    assert TrustAnchor.from_cose_key(encoded) == anchor
    decoded = CoseKey.decode(encoded)  # independent reader (pycose)
    assert decoded.kid == key_signer.kid


@pytest.mark.parametrize("raw", [b"\xa0", b"\x01", cbor2.dumps({1: 1, 2: b"\x01", 3: -8, -1: 6,
                                                                 -2: b"\x00" * 3})])
def test_bad_anchor_is_refused(raw: bytes) -> None:
    with pytest.raises(BundleError) as info:
        TrustAnchor.from_cose_key(raw)
    assert info.value.reason in {"anchor_invalid", "bundle_malformed"}


def test_colliding_anchor_kids_do_not_hide_the_signer(bundle_bytes: bytes, anchor: TrustAnchor,
                                                      bundle_signer: SoftwareSigner) -> None:
    """Regression: only the first anchor with the bundle's kid was tried; with one-byte kids a
    rotated-in anchor that happens to share the kid made a genuine bundle unverifiable."""
    other = SoftwareSigner.generate(bundle_signer.alg, kid=bundle_signer.kid)
    twin = TrustAnchor(other.kid, other.alg, other.public_key_bytes())
    assert TrustBundle.load(bundle_bytes, [twin, anchor]).sequence == 7
    with pytest.raises(BundleError, match="does not verify"):
        TrustBundle.load(bundle_bytes, [twin])
    es256 = SoftwareSigner.generate(Algorithm.es256, kid=bundle_signer.kid)
    with pytest.raises(BundleError, match="algorithm does not match"):
        TrustBundle.load(bundle_bytes, [TrustAnchor(es256.kid, es256.alg, es256.public_key_bytes())])


@pytest.mark.parametrize("number", ["", "12345678901234567", "0123\n", "١٢٣", "12a4", " 123"])
def test_revocation_lookup_fails_closed_on_non_card_numbers(bundle: TrustBundle, number: str) -> None:
    """Regression: anything card_number_word refused was reported as not revoked."""
    assert bundle.is_revoked(number)
