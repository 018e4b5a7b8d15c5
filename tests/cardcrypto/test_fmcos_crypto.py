"""FMCOS line protection, authentication cryptograms and line encryption."""

from __future__ import annotations

import pytest

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto import des
from cardsvc.cardcrypto.fmcos import (
    TDES,
    auth_cryptogram,
    decrypt_line,
    encrypt_line,
    line_mac,
    protect,
    suite,
    unprotect,
    verify_internal_auth,
    verify_response_mac,
)
from cardsvc.errors import CardIntegrityError, CryptoError

H = bytes.fromhex
FF16 = b"\xff" * 16

# klks/fmcos-python : examples/test_mac.py — FMCOS 3DES line-protection MACs (fmcos_3des_mac).
# Each command case is given there as the MAC input ``04 INS P1 P2 Lc+4 data``; here the same
# bytes are produced by protect() from the unprotected command.
COMMAND_VECTORS = [
    # (key, IV challenge, INS, P1, P2, data, MAC)
    (FF16, "44a47deb", 0xD6, 0x00, 0x00, "112233445566778899 00aabbccddeeff", "f2f62231"),
    (
        b"\x36" * 16, "a3bbcfc8", 0xD6, 0x95, 0x00,
        "000122000001ffff0101000022000000000000 0620160101205012310000",
        "96e32ef1",
    ),
    (
        FF16, "88bbe4e3", 0xD6, 0x85, 0x00,
        "000122000001ffff22000000000000060001201610280000000000010001000000000000000000000000"
        "000020501231",
        "ae8d8774",
    ),
]


@pytest.mark.parametrize(("key", "chal", "ins", "p1", "p2", "data", "mac"), COMMAND_VECTORS)
def test_protect_matches_klks_vectors(
    key: bytes, chal: str, ins: int, p1: int, p2: int, data: str, mac: str
) -> None:
    plain = CommandApdu(0x00, ins, p1, p2, H(data.replace(" ", "")))
    wrapped = protect(TDES, key, plain, H(chal))
    assert wrapped.cla == 0x04
    assert wrapped.data == plain.data + H(mac)
    assert unprotect(TDES, key, wrapped, H(chal)) == plain.data


def test_protected_read_header_mac_klks_vector() -> None:
    # klks/fmcos-python : examples/test_mac.py: MAC input 04 B0 00 00 04, IV D0FE4FB9 -> F09C8A19
    wrapped = protect(TDES, FF16, CommandApdu(0x00, 0xB0, 0, 0, le=0x14), H("d0fe4fb9"))
    assert wrapped.to_bytes() == H("04b0000004f09c8a1914")


def test_response_mac_klks_vector() -> None:
    # klks/fmcos-python : examples/test_mac.py: 16 data bytes, IV D0FE4FB9 -> 8D318577
    data = H("112233445566778899 00aabbccddeeff".replace(" ", ""))
    assert line_mac(TDES, FF16, data, H("d0fe4fb9")) == H("8d318577")
    assert verify_response_mac(TDES, FF16, data + H("8d318577"), H("d0fe4fb9")) == data


def test_tampered_command_or_response_fails_closed() -> None:
    wrapped = protect(TDES, FF16, CommandApdu(0x00, 0xD6, 0, 0, b"card"), H("01020304"))
    flipped = CommandApdu(wrapped.cla, wrapped.ins, wrapped.p1, 1, wrapped.data)
    with pytest.raises(CardIntegrityError):
        unprotect(TDES, FF16, flipped, H("01020304"))
    with pytest.raises(CardIntegrityError):
        unprotect(TDES, FF16, wrapped, H("01020305"))  # stale challenge
    with pytest.raises(CardIntegrityError, match="no MAC"):
        unprotect(TDES, FF16, CommandApdu(0x04, 0xD6, 0, 0, b"ab"), H("01020304"))
    with pytest.raises(CardIntegrityError):
        verify_response_mac(TDES, FF16, b"data" + H("8d318577"), H("d0fe4fb9"))


def test_auth_cryptogram_is_tdes_of_challenge() -> None:
    # rtyley/spongycastle-old : .../crypto/test/DESedeTest.java (vector 1), first block
    key = H("0123456789abcdeffedcba9876543210")
    assert auth_cryptogram(TDES, key, b"Now is t") == H("d80a0d8b2bae5e4e")
    # a 4-byte challenge is padded with four zero bytes
    assert auth_cryptogram(TDES, key, b"Now ") == des.ecb_encrypt(key, b"Now \x00\x00\x00\x00")


def test_verify_internal_auth_fails_closed() -> None:
    key, challenge = bytes(range(16)), H("0011223344556677")
    good = auth_cryptogram(TDES, key, challenge)
    verify_internal_auth(TDES, key, challenge, good)  # returns None: no bare bool
    with pytest.raises(CardIntegrityError):
        verify_internal_auth(TDES, key, challenge, good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(CardIntegrityError):
        verify_internal_auth(TDES, bytes(range(1, 17)), challenge, good)
    with pytest.raises(CardIntegrityError):
        verify_internal_auth(TDES, key, challenge, good[:4])


@pytest.mark.parametrize("n", [0, 1, 6, 7, 8, 15, 23, 200])
def test_line_encryption_round_trip_and_layout(n: int) -> None:
    key = bytes(range(16))
    plain = bytes(range(n))
    ct = encrypt_line(TDES, key, plain)
    inner = des.ecb_decrypt(key, ct)
    assert inner[0] == n and inner[1 : 1 + n] == plain
    if (n + 1) % 8:  # padded with 80 00.. only when Ld ‖ data is not whole blocks
        assert inner[1 + n] == 0x80 and not any(inner[2 + n :])
    else:
        assert len(inner) == n + 1
    assert decrypt_line(TDES, key, ct) == plain


def test_line_decryption_refuses_garbage() -> None:
    key = bytes(range(16))
    with pytest.raises(CardIntegrityError):
        decrypt_line(TDES, key, bytes(7))
    with pytest.raises(CardIntegrityError):
        decrypt_line(TDES, key, des.ecb_encrypt(key, b"\x20" + bytes(7)))  # Ld beyond the data
    with pytest.raises(CardIntegrityError):
        decrypt_line(TDES, key, des.ecb_encrypt(key, b"\x02ab\x81\x00\x00\x00\x00"))


def test_sizes_and_suite_names_are_checked() -> None:
    with pytest.raises(CryptoError, match="unknown FMCOS cipher suite"):
        suite("aes")
    with pytest.raises(CryptoError, match="tdes key"):
        auth_cryptogram(TDES, bytes(8), bytes(8))
    with pytest.raises(CryptoError, match="challenge"):
        auth_cryptogram(TDES, bytes(16), bytes(9))
    with pytest.raises(CryptoError, match="challenge"):
        line_mac(TDES, bytes(16), b"x", bytes(3))
    with pytest.raises(CryptoError, match="255"):
        encrypt_line(TDES, bytes(16), bytes(256))
