"""Bounded fuzzing of the QR / CBOR / bundle parsers: only typed errors, bounded memory."""

from __future__ import annotations

import tracemalloc

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardsvc.credential import (
    OfflineVerifier,
    TrustAnchor,
    TrustBundle,
    VerificationStatus,
    from_qr_text,
    parse_credential,
)
from cardsvc.credential.base45 import ALPHABET, b45encode
from cardsvc.errors import BundleError, MalformedCredential

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])

cbor_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True), st.binary(max_size=40), st.text(max_size=20),
)
cbor_values = st.recursive(
    cbor_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.integers(-70000, 70000), st.text(max_size=3)), inner, max_size=5),
        st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 4, 18, 24, 30, 35, 37, 258, 61]), inner),
    ),
    max_leaves=20,
)


def _parse_typed(raw: bytes) -> None:
    try:
        parse_credential(raw)
    except MalformedCredential as exc:
        assert exc.reason


@FUZZ
@given(st.text(max_size=300))
def test_qr_text_parser(text: str) -> None:
    try:
        from_qr_text(text)
    except MalformedCredential as exc:
        assert exc.reason in {"prefix", "base45", "too_large"}


@FUZZ
@given(st.text(alphabet=ALPHABET, max_size=250))
def test_prefixed_base45_text_through_the_verifier(verifier: OfflineVerifier, text: str) -> None:
    result = verifier.verify("UC1:" + text)
    assert result.status is VerificationStatus.nok and result.reason


@FUZZ
@given(st.binary(max_size=200))
def test_credential_parser_on_random_bytes(raw: bytes) -> None:
    _parse_typed(raw)


@FUZZ
@given(cbor_values)
def test_credential_parser_on_random_cbor(value: object) -> None:
    _parse_typed(cbor2.dumps(value))
    _parse_typed(cbor2.dumps(cbor2.CBORTag(18, [b"", {}, cbor2.dumps(value), b""])))
    header = cbor2.dumps({1: -8, 4: b"\x11"})
    _parse_typed(cbor2.dumps(cbor2.CBORTag(18, [header, {}, cbor2.dumps(value), b"\x00" * 64])))


@FUZZ
@given(st.data())
def test_mutated_credentials(verifier: OfflineVerifier, credential: bytes, data: st.DataObject) -> None:
    raw = bytearray(credential)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            raw[index] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "delete" and len(raw) > 1:
            del raw[index]
        else:
            raw.insert(index, data.draw(st.integers(0, 255)))
    result = verifier.verify("UC1:" + b45encode(bytes(raw)))
    assert result.status is not VerificationStatus.ok or bytes(raw) == credential


@FUZZ
@given(st.binary(max_size=400))
def test_bundle_parser_on_random_bytes(anchor: TrustAnchor, raw: bytes) -> None:
    with pytest.raises(BundleError):
        TrustBundle.load(raw, anchor)


@FUZZ
@given(st.data())
def test_mutated_bundles(anchor: TrustAnchor, bundle_bytes: bytes, data: st.DataObject) -> None:
    raw = bytearray(bundle_bytes)
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(BundleError):
        TrustBundle.load(bytes(raw), anchor)


HOSTILE = {
    "nested_arrays": b"\x81" * 100_000 + b"\x00",
    "nested_tags": b"\xd8\x18" * 50_000 + b"\x00",
    "nested_maps": b"\xa1\x00" * 50_000 + b"\x00",
    "exabyte_bstr": b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff",
    "4gb_bstr": b"\x5a\xff\xff\xff\xff" + b"\x00" * 16,
    "huge_array": b"\x9b\x00\x00\x00\x10\x00\x00\x00\x00",
    "huge_map": b"\xbb\x00\x00\x00\x10\x00\x00\x00\x00",
    "indefinite_unclosed": b"\x9f" * 1000,
    "bignum_tag": b"\xc2\x5a\x00\x01\x00\x00" + b"\xff" * 65536,
    "regex_tag": b"\xd8\x23\x63a(b",
    # found by test_credential_parser_on_random_cbor: uuid.UUID(bytes=<str>) raises AssertionError
    "uuid_tag_with_text": b"\xd8\x25\x70" + b"0" * 16,
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_cbor_is_typed_and_bounded(raw: bytes, anchor: TrustAnchor) -> None:
    for wrapped in (raw, cbor2.dumps(cbor2.CBORTag(18, [b"", {}, raw, b""]))):
        tracemalloc.start()
        try:
            with pytest.raises(MalformedCredential):
                parse_credential(wrapped)
            with pytest.raises(BundleError):
                TrustBundle.load(wrapped, anchor)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024 + 4 * len(wrapped), peak


def test_hostile_payload_inside_a_signed_shape(verifier: OfflineVerifier) -> None:
    header = cbor2.dumps({1: -8, 4: b"\x11"})
    for raw in HOSTILE.values():
        credential = cbor2.dumps(cbor2.CBORTag(18, [header, {}, raw[:60], b"\x00" * 64]))
        result = verifier.verify(credential)
        assert result.status is VerificationStatus.nok


def test_every_truncation_is_a_typed_error(verifier: OfflineVerifier, credential: bytes,
                                           anchor: TrustAnchor) -> None:
    """Regression: an 11-13-byte prefix of our canonical layout raised IndexError in the
    slicing fast path (random bytes almost never start with the 11 canonical header bytes)."""
    for cut in range(len(credential)):
        raw = credential[:cut]
        with pytest.raises(MalformedCredential):
            parse_credential(raw)
        with pytest.raises(BundleError):
            TrustBundle.load(raw, anchor)
        result = verifier.verify(raw)
        assert result.status is VerificationStatus.nok and result.reason
