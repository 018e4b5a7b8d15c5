"""Credential format: CWT claims, COSE_Sign1 layout, 128-byte budget, interop with pycose and cwt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cbor2
import cwt
import pytest
from cwt import COSE, COSEKey
from pycose.algorithms import EdDSA, Es256
from pycose.headers import KID
from pycose.headers import Algorithm as AlgHeader
from pycose.keys import EC2Key, OKPKey
from pycose.keys.curves import P256, Ed25519
from pycose.messages import CoseMessage, Sign1Message

from cardsvc.credential import (
    MAX_CREDENTIAL_SIZE,
    Algorithm,
    CredentialClaims,
    SoftwareSigner,
    issue_credential,
    parse_credential,
)
from cardsvc.credential.keys import load_public_key, private_bytes, signature_check
from cardsvc.credential.token import check_signature
from cardsvc.errors import CredentialVerificationError, MalformedCredential
from tests.support.credentials import make_claims

LONGEST_CARD = "9" * 16


def _flip_bit(raw: bytes, index: int) -> bytes:
    return raw[:index] + bytes((raw[index] ^ 0x01,)) + raw[index + 1 :]


@pytest.mark.parametrize("alg", list(Algorithm))
def test_worst_case_fits_the_card_file(alg: Algorithm) -> None:
    signer = SoftwareSigner.generate(alg)
    raw = issue_credential(signer, make_claims(LONGEST_CARD))
    assert len(raw) == MAX_CREDENTIAL_SIZE
    assert raw[:2] == b"\xd2\x84"  # tag 18 (COSE_Sign1), array of 4


def test_round_trip_keeps_every_claim(signer: SoftwareSigner) -> None:
    claims = make_claims("0042", categories=("A", "B7"), key_version=3)
    parsed = parse_credential(issue_credential(signer, claims))
    assert parsed.claims == claims
    assert parsed.sign1.kid == signer.kid and parsed.sign1.alg == -8


def test_cwt_claims_are_standard_and_carry_no_personal_data(signer: SoftwareSigner) -> None:
    raw = issue_credential(signer, make_claims("202600012345"))
    payload = cbor2.loads(cbor2.loads(raw).value[2])
    # RFC 8392 §3.1: iss 1, exp 4, iat 6, cti 7; -65537 is private use (§9.1)
    assert set(payload) == {1, 4, 6, 7, -65537}
    assert payload[7] == b"202600012345"
    assert payload[-65537] == [1, "n424", 1]


def test_too_large_credential_is_refused_at_issuance(signer: SoftwareSigner) -> None:
    claims = make_claims(LONGEST_CARD, issuer="CN-DISTRICT-FTU")
    with pytest.raises(MalformedCredential, match="128") as info:
        issue_credential(signer, claims)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize(
    "changes",
    [
        {"card_number": "12345678901234567"},
        {"card_number": "12a4"},
        {"card_number": ""},
        {"issuer": ""},
        {"issuer": "has space"},
        {"profile": "剖面"},
        {"categories": ("",)},
        {"key_version": -1},
        {"version": 0},
        {"issued_at": datetime(2026, 1, 1)},  # naive
        {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)},  # before issued_at
    ],
)
def test_claims_refuse_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedCredential) as info:
        make_claims(**changes)  # type: ignore[arg-type]
    assert info.value.reason == "claims"


def _cwt_key(signer: SoftwareSigner, *, private: bool) -> COSEKey:
    public = signer.public_key_bytes()
    if signer.alg is Algorithm.eddsa:
        params: dict[int, object] = {1: 1, 2: signer.kid, 3: -8, -1: 6, -2: public}
        if private:
            params[-4] = private_bytes(signer.private_key)
    else:
        params = {1: 2, 2: signer.kid, 3: -7, -1: 1, -2: public[1:33], -3: public[33:]}
        if private:
            params[-4] = private_bytes(signer.private_key)
    return COSEKey.new(params)


def _pycose_key(signer: SoftwareSigner, *, private: bool) -> OKPKey | EC2Key:
    public = signer.public_key_bytes()
    d = private_bytes(signer.private_key) if private else b""
    if signer.alg is Algorithm.eddsa:
        return OKPKey(crv=Ed25519, x=public, d=d) if private else OKPKey(crv=Ed25519, x=public)
    if private:
        return EC2Key(crv=P256, x=public[1:33], y=public[33:], d=d)
    return EC2Key(crv=P256, x=public[1:33], y=public[33:])


@pytest.fixture(params=["eddsa", "es256"])
def any_signer(request: pytest.FixtureRequest, signer: SoftwareSigner,
               es256_signer: SoftwareSigner) -> SoftwareSigner:
    return signer if request.param == "eddsa" else es256_signer


def test_ours_verify_in_pycose_and_cwt(any_signer: SoftwareSigner) -> None:
    claims = make_claims()
    raw = issue_credential(any_signer, claims)
    message = CoseMessage.decode(raw)
    message.key = _pycose_key(any_signer, private=False)
    assert message.verify_signature()
    decoded = cwt.decode(raw, keys=[_cwt_key(any_signer, private=False)], no_verify=True)
    assert decoded[7] == claims.card_number.encode() and decoded[1] == claims.issuer


def test_one_bit_change_fails_in_pycose_and_cwt(any_signer: SoftwareSigner) -> None:
    raw = issue_credential(any_signer, make_claims())
    tampered = _flip_bit(raw, 30)  # inside the payload (the card number)
    message = CoseMessage.decode(tampered)
    message.key = _pycose_key(any_signer, private=False)
    assert not message.verify_signature()
    with pytest.raises(cwt.VerifyError):
        cwt.decode(tampered, keys=[_cwt_key(any_signer, private=False)], no_verify=True)


def test_pycose_signed_credential_parses_and_verifies_in_ours(any_signer: SoftwareSigner) -> None:
    claims = make_claims()
    alg = EdDSA if any_signer.alg is Algorithm.eddsa else Es256
    message = Sign1Message(phdr={AlgHeader: alg, KID: any_signer.kid},
                           payload=cbor2.dumps(claims.to_cbor_map()))
    message.key = _pycose_key(any_signer, private=True)
    raw = message.encode()
    parsed = parse_credential(raw)
    assert parsed.claims == claims
    public = signature_check(any_signer.alg,
                             load_public_key(any_signer.alg, any_signer.public_key_bytes()))
    check_signature(parsed, public)
    with pytest.raises(CredentialVerificationError):
        check_signature(parse_credential(_flip_bit(raw, len(raw) - 5)), public)


def test_cwt_signed_credential_verifies_in_ours(any_signer: SoftwareSigner) -> None:
    claims = make_claims()
    raw = COSE.new().encode_and_sign(
        cbor2.dumps(claims.to_cbor_map()), _cwt_key(any_signer, private=True),
        protected={1: int(any_signer.alg), 4: any_signer.kid}, unprotected={},
    )
    parsed = parse_credential(raw)
    assert parsed.claims == claims
    public = load_public_key(any_signer.alg, any_signer.public_key_bytes())
    check_signature(parsed, signature_check(any_signer.alg, public))


def test_issued_times_are_whole_seconds(signer: SoftwareSigner) -> None:
    moment = datetime(2026, 5, 1, 8, 30, 15, 999_000, tzinfo=UTC)
    claims = make_claims(issued_at=moment, expires_at=moment + timedelta(days=1))
    parsed = parse_credential(issue_credential(signer, claims)).claims
    assert parsed.issued_at == moment.replace(microsecond=0)


def test_claims_object_is_frozen() -> None:
    claims = make_claims()
    with pytest.raises(AttributeError):
        claims.card_number = "1"  # type: ignore[misc]
    assert isinstance(claims, CredentialClaims)
