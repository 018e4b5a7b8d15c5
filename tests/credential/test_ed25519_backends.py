"""Ed25519 verification through libsodium (PyNaCl) accepts nothing that OpenSSL (`cryptography`)
refuses: RFC 8032 vectors, malleated and mutated signatures, small-order and non-canonical points,
and a differential run over random keys and messages.

The edge-case points are built here with a small reference implementation of the curve (RFC 8032
§5.1), the same classes as C2SP/CCTV's ed25519vectors (low-order A and R, their non-canonical
encodings, mixed-order R) and "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, SSR 2020).
"""

from __future__ import annotations

import hashlib
import random

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from cardsvc.credential import Algorithm
from cardsvc.credential.keys import signature_check, verify_signature
from cardsvc.errors import CredentialVerificationError

# --- reference arithmetic (RFC 8032 §5.1; extended coordinates X, Y, Z, T) ----------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # group order (RFC 8032 §5.1)
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


def _add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(scalar: int, point: Point) -> Point:
    result = IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _neg(point: Point) -> Point:
    return (-point[0] % P, point[1], point[2], -point[3] % P)


def _affine(point: Point) -> tuple[int, int]:
    z_inv = pow(point[2], P - 2, P)
    return point[0] * z_inv % P, point[1] * z_inv % P


def _encode(point: Point) -> bytes:
    x, y = _affine(point)
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _from_y(y: int, sign: int) -> Point | None:
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x & 1 != sign:
        x = -x % P
    return (x, y, 1, x * y % P)


BASE = _from_y(4 * pow(5, P - 2, P) % P, 0)
assert BASE is not None


def _torsion() -> list[Point]:
    """The eight points of order dividing 8: multiples of [L]Q for a Q of order 8·L."""
    y = 2
    while True:
        q = _from_y(y, 0)
        if q is not None:
            t = _mul(L, q)
            if _encode(_mul(4, t)) != _encode(IDENTITY):
                return [_mul(k, t) for k in range(8)]
        y += 1


TORSION = _torsion()
CANONICAL_SMALL = sorted({_encode(t) for t in TORSION})
# The six other encodings of small-order points: x = 0 with the sign bit set (identity, y = −1)
# and y ≥ p (y = 0 as p, y = 1 as p + 1), each sign.
NON_CANONICAL_SMALL = [
    (1 | 1 << 255).to_bytes(32, "little"),
    (P - 1 | 1 << 255).to_bytes(32, "little"),
    P.to_bytes(32, "little"),
    (P | 1 << 255).to_bytes(32, "little"),
    (P + 1).to_bytes(32, "little"),
    (P + 1 | 1 << 255).to_bytes(32, "little"),
]


def _challenge(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def _secret_scalar(seed: bytes) -> int:
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] = (h[31] & 127) | 64
    return int.from_bytes(h, "little")


def _scalar(value: int) -> bytes:
    return value.to_bytes(32, "little")


# --- the two implementations ------------------------------------------------------------------


def sodium_accepts(public: bytes, signature: bytes, message: bytes) -> bool:
    """Our bound check (libsodium), through the path the verifiers use."""
    check = signature_check(Algorithm.eddsa, ed25519.Ed25519PublicKey.from_public_bytes(public))
    try:
        verify_signature(check, signature, message)
    except CredentialVerificationError as exc:
        assert exc.reason == "signature"
        return False
    return True


def openssl_accepts(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def verdicts(public: bytes, signature: bytes, message: bytes) -> tuple[bool, bool]:
    return sodium_accepts(public, signature, message), openssl_accepts(public, signature, message)


# RFC 8032 §7.1 (Ed25519): TEST 1, TEST 2, TEST 3 and TEST SHA(abc) — secret, public, message, signature.
RFC8032_VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
     "d25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
     "4a7c15e9716ed28dc027beceea1ec40a"),
    ("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
     "454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e030"
     "3dca179c138ac17ad9bef1177331a704"),
]
VECTORS = [tuple(bytes.fromhex(field) for field in vector) for vector in RFC8032_VECTORS]
VECTOR_IDS = ["test1", "test2", "test3", "sha_abc"]


def test_reference_arithmetic_matches_the_library() -> None:
    secret, public, _, _ = VECTORS[0]
    assert _encode(_mul(_secret_scalar(secret), BASE)) == public
    assert _encode(_mul(L, BASE)) == _encode(IDENTITY)
    assert len(CANONICAL_SMALL) == 8
    for known in ("0100000000000000000000000000000000000000000000000000000000000000",
                  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"):
        assert bytes.fromhex(known) in CANONICAL_SMALL


@pytest.mark.parametrize(("secret", "public", "message", "signature"), VECTORS, ids=VECTOR_IDS)
def test_rfc8032_vectors_verify(secret: bytes, public: bytes, message: bytes, signature: bytes) -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(secret)
    assert key.public_key().public_bytes_raw() == public
    assert key.sign(message) == signature
    assert verdicts(public, signature, message) == (True, True)


@pytest.mark.parametrize(("public", "message", "signature"), [v[1:] for v in VECTORS], ids=VECTOR_IDS)
def test_flipped_bits_are_refused_by_both(public: bytes, message: bytes, signature: bytes) -> None:
    for bit in (0, 7, 100, 255, 256, 300, 500, 511):  # R is bits 0–255, S is 256–511
        mutated = bytearray(signature)
        mutated[bit // 8] ^= 1 << bit % 8
        assert verdicts(public, bytes(mutated), message) == (False, False), bit
    other = bytes([message[0] ^ 0x01]) + message[1:] if message else b"\x00"
    assert verdicts(public, signature, other) == (False, False)
    assert verdicts(public, signature, message + b"\x00") == (False, False)


@pytest.mark.parametrize(("public", "message", "signature"), [v[1:] for v in VECTORS], ids=VECTOR_IDS)
def test_s_not_reduced_is_refused_by_both(public: bytes, message: bytes, signature: bytes) -> None:
    s = int.from_bytes(signature[32:], "little")
    # S + L satisfies the verification equation (it is S mod L) — the classic malleation.
    assert verdicts(public, signature[:32] + _scalar(s + L), message) == (False, False)
    assert verdicts(public, signature[:32] + _scalar(s + 2 * L), message) == (False, False)
    assert verdicts(public, signature[:32] + _scalar(L), message) == (False, False)


@pytest.mark.parametrize("length", [0, 1, 32, 63, 65, 96, 128])
def test_wrong_length_signature_is_refused_by_both(length: int) -> None:
    _, public, message, signature = VECTORS[1]
    candidate = (signature * 2)[:length]
    assert verdicts(public, candidate, message) == (False, False)


def test_wrong_length_signature_cannot_borrow_from_the_message() -> None:
    # crypto_sign_open reads signature‖message: a 63-byte signature must not take the message's
    # first byte as its last (here the real signature's last byte leads a longer message).
    _, public, message, signature = VECTORS[1]
    assert verdicts(public, signature[:63], signature[63:] + message) == (False, False)


def test_small_order_public_keys_are_refused_by_libsodium_never_accepted_only_by_it() -> None:
    """Every small-order key encoding, with an honest-looking signature and with a forgery that
    passes the cofactorless equation ([S]B = R + [k]A holds when [k]A is the identity)."""
    rng = random.Random(8032)
    message = b"small-order key"
    openssl_forgeries: dict[bytes, int] = {}
    for public in CANONICAL_SMALL + NON_CANONICAL_SMALL:
        assert verdicts(public, VECTORS[1][3], message) == (False, False)
        openssl_forgeries[public] = 0
        for _ in range(64):  # k ≡ 0 mod the key's order (≤ 8): about one try in eight or better
            s = rng.randrange(L)
            signature = _encode(_mul(s, BASE)) + _scalar(s)
            sodium, openssl = verdicts(public, signature, message)
            assert not sodium
            openssl_forgeries[public] += openssl
    # OpenSSL has no small-order check: under the identity key (either sign bit) it takes every
    # forgery, and some under each other small-order encoding; libsodium takes none. Our keys come
    # from the signed trust bundle / key store, so neither is exposed to such a key, but the switch
    # narrowed what verifies, never widened it.
    assert openssl_forgeries[_encode(IDENTITY)] == 64
    assert openssl_forgeries[NON_CANONICAL_SMALL[0]] == 64
    assert all(openssl_forgeries.values()), openssl_forgeries


def test_small_order_and_mixed_order_r_under_an_honest_key() -> None:
    secret, public, message, _ = VECTORS[0]
    a = _secret_scalar(secret)
    identity = _encode(IDENTITY)
    # R of small order (every encoding): S = k·a makes [S]B − [k]A the identity, so the
    # cofactorless equation holds for R = O's canonical encoding only — OpenSSL takes that one
    # (a signature only the key holder can make); libsodium refuses small-order R outright.
    for r in CANONICAL_SMALL + NON_CANONICAL_SMALL:
        k = _challenge(r, public, message)
        sodium, openssl = verdicts(public, r + _scalar(k * a % L), message)
        assert not sodium
        assert openssl == (r == identity)
    # R = [n]B + T with T ≠ O: S = n + k·a satisfies only the cofactored equation.
    n = 0x1234567
    for t in TORSION[1:]:
        r = _encode(_add(_mul(n, BASE), t))
        k = _challenge(r, public, message)
        assert verdicts(public, r + _scalar((n + k * a) % L), message) == (False, False)
    # The control: R = [n]B and the same S formula is a valid signature for both.
    r = _encode(_mul(n, BASE))
    s = (n + _challenge(r, public, message) * a) % L
    assert verdicts(public, r + _scalar(s), message) == (True, True)


def test_negated_public_key_is_refused_by_both() -> None:
    secret, public, message, signature = VECTORS[2]
    negated = _encode(_neg(_mul(_secret_scalar(secret), BASE)))
    assert negated != public
    assert verdicts(negated, signature, message) == (False, False)


def test_differential_random_keys_and_messages() -> None:
    """Same verdict from both over random keys and messages: valid signatures and mutations."""
    rng = random.Random(25519)
    accepted = refused = 0
    for _ in range(250):
        key = ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        public = key.public_key().public_bytes_raw()
        message = rng.randbytes(rng.choice((0, 1, 16, 117, 128, 300)))
        signature = key.sign(message)
        s = int.from_bytes(signature[32:], "little")
        flip = rng.randrange(512)
        mutated = bytearray(signature)
        mutated[flip // 8] ^= 1 << flip % 8
        cases = [
            (public, signature, message, True),
            (public, bytes(mutated), message, False),
            (public, signature[:32] + _scalar(s + L), message, False),
            (public, signature, message + rng.randbytes(1), False),
            (public, rng.randbytes(64), message, False),
            (public, signature[:rng.randrange(64)], message, False),
            (ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw(), signature, message, False),
        ]
        if message:
            index = rng.randrange(len(message))
            changed = bytearray(message)
            changed[index] ^= 1 << rng.randrange(8)
            cases.append((public, signature, bytes(changed), False))
        for pub, sig, msg, expected in cases:
            sodium, openssl = verdicts(pub, sig, msg)
            assert sodium == openssl == expected
            accepted += sodium
            refused += not sodium
    assert accepted == 250
    assert refused >= 250 * 6


def test_failures_surface_as_the_one_signature_error() -> None:
    _, public, message, signature = VECTORS[1]
    check = signature_check(Algorithm.eddsa, ed25519.Ed25519PublicKey.from_public_bytes(public))
    for bad in (signature[:-1], b"", signature + b"\x00", bytes(64)):
        with pytest.raises(CredentialVerificationError) as caught:
            verify_signature(check, bad, message)
        assert caught.value.reason == "signature"
    # The raw check raises cryptography's InvalidSignature (the SignatureCheck contract), never
    # a libsodium exception type.
    with pytest.raises(InvalidSignature):
        check(bytes(64), message)
    check(signature, message)
