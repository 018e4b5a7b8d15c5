"""AES-128 building blocks for NXP secure messaging: ECB/CBC, AES-CMAC (NIST SP 800-38B),
the NXP odd-byte MAC truncation, and ISO/IEC 9797-1 padding method 2.

Bytes in, bytes out; wrong key or block sizes raise :class:`~cardsvc.errors.CryptoError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from cardsvc.cardcrypto.padding import pad_method2, unpad_method2
from cardsvc.errors import CryptoError

BLOCK = 16
KEY_SIZE = 16
ZERO_BLOCK = bytes(BLOCK)
_RB = 0x87  # CMAC subkey constant for 128-bit blocks


def check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise CryptoError(f"AES-128 key must be {KEY_SIZE} bytes, got {len(key)}")


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK:
        raise CryptoError(f"data must be a multiple of {BLOCK} bytes, got {len(data)}")


def _apply(key: bytes, mode: modes.ECB | modes.CBC, data: bytes, *, encrypt: bool) -> bytes:
    check_key(key)
    _check_blocks(data)
    cipher = Cipher(algorithms.AES(key), mode)
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


def ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """AES-128-ECB encryption of whole blocks (used for single-block derivations)."""
    return _apply(key, modes.ECB(), data, encrypt=True)  # noqa: S305 - one-block primitive


def ecb_decrypt(key: bytes, data: bytes) -> bytes:
    return _apply(key, modes.ECB(), data, encrypt=False)  # noqa: S305 - one-block primitive


def cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC encryption without padding (callers pad with :func:`pad_m2`)."""
    _check_iv(iv)
    return _apply(key, modes.CBC(iv), data, encrypt=True)


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_iv(iv)
    return _apply(key, modes.CBC(iv), data, encrypt=False)


def _check_iv(iv: bytes) -> None:
    if len(iv) != BLOCK:
        raise CryptoError(f"IV must be {BLOCK} bytes, got {len(iv)}")


def chain_cbc(encrypt: Callable[[bytes], bytes], block: int, iv: bytes, data: bytes) -> bytes:
    """CBC encryption over a block primitive ``encrypt`` (an ECB context's ``update``), ``block``
    bytes wide (16 for AES, 8 for TDES); ``data`` is a whole number of blocks. Chaining as ints
    avoids a bytes XOR per block."""
    out, chained = [], int.from_bytes(iv, "big")
    for start in range(0, len(data), block):
        chained ^= int.from_bytes(data[start : start + block], "big")
        sealed = encrypt(chained.to_bytes(block, "big"))
        out.append(sealed)
        chained = int.from_bytes(sealed, "big")
    return b"".join(out)


class AesKey:
    """One AES-128 key with its ECB contexts made once, for a session's many short operations.

    Making a cipher context costs ~6 µs, using one ~0.6 µs, and an EV2 session does two or three
    one- or two-block operations per command. Results equal the module functions'. Not
    thread-safe (the contexts are mutable): one object per session, used by one thread.
    """

    __slots__ = ("_cipher", "_decrypt", "_encrypt", "_k1", "_k2")

    def __init__(self, key: bytes) -> None:
        check_key(key)
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 - block primitive
        self._encrypt = self._cipher.encryptor()
        self._decrypt: CipherContext | None = None  # made on first use (a MAC key never decrypts)
        self._k1, self._k2 = cmac_subkeys(self._encrypt.update(ZERO_BLOCK))

    def __repr__(self) -> str:
        return "AesKey(<key hidden>)"

    def ecb_encrypt(self, data: bytes) -> bytes:
        _check_blocks(data)
        return self._encrypt.update(data)

    def cbc_encrypt(self, iv: bytes, data: bytes) -> bytes:
        """CBC without padding: each block encrypted after XOR with the previous ciphertext."""
        _check_iv(iv)
        _check_blocks(data)
        return chain_cbc(self._encrypt.update, BLOCK, iv, data)

    def cbc_decrypt(self, iv: bytes, data: bytes) -> bytes:
        """All blocks decrypted at once, then XORed with the previous ciphertext (or the IV)."""
        _check_iv(iv)
        _check_blocks(data)
        if not data:
            return b""
        if self._decrypt is None:
            self._decrypt = self._cipher.decryptor()
        return xor(self._decrypt.update(data), iv + data[:-BLOCK])

    def cmac(self, data: bytes) -> bytes:
        """AES-CMAC (SP 800-38B §6.2): the last block XOR K1 when complete, else padded XOR K2."""
        tail = len(data) % BLOCK if data else 0
        if data and not tail:
            body, last = data[:-BLOCK], xor(data[-BLOCK:], self._k1)
        else:
            cut = len(data) - tail
            body, last = data[:cut], xor(pad_m2(data[cut:]), self._k2)
        return self.cbc_encrypt(ZERO_BLOCK, body + last)[-BLOCK:]

    def cmac_t(self, data: bytes) -> bytes:
        return truncate_mac(self.cmac(data))


class SharedAesKey:
    """One AES-128 key held for a process's lifetime and used from many threads (a verifier's
    master or system-wide keys): raw block encryption/decryption and its CMAC subkeys.

    The key schedule and ``L = E(K, 0)`` are computed once; each thread gets its own ECB contexts
    on first use (a context is mutable, :class:`AesKey` is one thread's). ``k1``/``k2`` are the
    CMAC subkeys (SP 800-38B §6.1). Data must be whole blocks: a partial one would stay buffered
    in the context and shift every later result, so it raises instead.
    """

    __slots__ = ("_cipher", "_local", "k1", "k2")

    def __init__(self, key: bytes) -> None:
        check_key(key)
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 - block primitive
        self._local = threading.local()
        self.k1, self.k2 = cmac_subkeys(self.encrypt_blocks(ZERO_BLOCK))

    def __repr__(self) -> str:
        return "SharedAesKey(<key hidden>)"

    def encryptor(self) -> Callable[[bytes], bytes]:
        """This thread's raw ECB encryption (a context's ``update``): for hot paths that build
        whole blocks themselves; anything else uses :meth:`encrypt_blocks`."""
        try:
            update: Callable[[bytes], bytes] = self._local.encrypt
        except AttributeError:
            update = self._local.encrypt = self._cipher.encryptor().update
        return update

    def decryptor(self) -> Callable[[bytes], bytes]:
        """This thread's raw ECB decryption; whole blocks only, like :meth:`encryptor`."""
        try:
            update: Callable[[bytes], bytes] = self._local.decrypt
        except AttributeError:
            update = self._local.decrypt = self._cipher.decryptor().update
        return update

    def encrypt_blocks(self, data: bytes) -> bytes:
        """AES-ECB encryption of whole blocks with this thread's context."""
        _check_blocks(data)
        return self.encryptor()(data)

    def decrypt_blocks(self, data: bytes) -> bytes:
        """AES-ECB decryption of whole blocks with this thread's context."""
        _check_blocks(data)
        return self.decryptor()(data)

def cmac(key: bytes, data: bytes) -> bytes:
    """The full 16-byte AES-CMAC of ``data``."""
    check_key(key)
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def truncate_mac(full_mac: bytes) -> bytes:
    """NXP MACt: the bytes at odd indexes 1, 3, …, 15 of a 16-byte CMAC (AN12196 §3.4)."""
    if len(full_mac) != BLOCK:
        raise CryptoError(f"a full CMAC is {BLOCK} bytes, got {len(full_mac)}")
    return full_mac[1::2]


def cmac_t(key: bytes, data: bytes) -> bytes:
    """The 8-byte truncated CMAC used in EV2 secure messaging and SUN."""
    return truncate_mac(cmac(key, data))


def pad_m2(data: bytes, block: int = BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 2 to AES blocks (see :mod:`cardsvc.cardcrypto.padding`)."""
    return pad_method2(data, block)


def unpad_m2(data: bytes, block: int = BLOCK) -> bytes:
    """Remove method-2 padding; :class:`CryptoError` when it is not well formed."""
    return unpad_method2(data, block)


def cmac_subkeys(encrypt_block: bytes, rb: int = _RB) -> tuple[bytes, bytes]:
    """CMAC subkeys K1, K2 from ``L = E(K, 0^n)`` (SP 800-38B §6.1); ``rb`` 0x87 AES, 0x1B DES."""
    k1 = _double(encrypt_block, rb)
    return k1, _double(k1, rb)


def _double(block: bytes, rb: int) -> bytes:
    value = int.from_bytes(block, "big") << 1
    size = len(block)
    if value >> (8 * size):
        value ^= rb
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")


def xor(a: bytes, b: bytes) -> bytes:
    """Byte-wise XOR of two equally long strings."""
    if len(a) != len(b):
        raise CryptoError(f"xor of unequal lengths {len(a)} and {len(b)}")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")
