"""ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC", ANSI X9.19) with padding method 2.

The message is padded with ``80 00…`` to a whole number of 8-byte blocks, chained with single
DES under K (the key's left half) from an arbitrary IV, and the last chaining value is finished
with ``E(K, D(K', ·))`` where K' is the right half (ISO/IEC 9797-1 §7.3, MAC algorithm 3).
FMCOS line protection uses it with IV = 4-byte card challenge ‖ 00000000 and keeps the first
4 bytes.
"""

from __future__ import annotations

from cardsvc.cardcrypto import des
from cardsvc.cardcrypto.padding import pad_method2
from cardsvc.errors import CryptoError

BLOCK = des.BLOCK
KEY_SIZE = 16


def _check(key: bytes, iv: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise CryptoError(f"retail MAC key must be {KEY_SIZE} bytes, got {len(key)}")
    if len(iv) != BLOCK:
        raise CryptoError(f"IV must be {BLOCK} bytes, got {len(iv)}")


def retail_mac(key: bytes, data: bytes, iv: bytes = des.ZERO_IV) -> bytes:
    """The full 8-byte MAC algorithm 3 value over ``data`` with padding method 2; callers truncate.

    The last step ``E(K, D(K', E(K, x)))`` is exactly two-key TDES of ``x`` = last block ⊕ the
    single-DES CBC chain over the blocks before it, so two cipher contexts suffice.
    """
    _check(key, iv)
    padded = pad_method2(data, BLOCK)
    head, last = padded[:-BLOCK], padded[-BLOCK:]
    chain = des.cbc_encrypt(key[:BLOCK], iv, head)[-BLOCK:] if head else iv
    return des.ecb_encrypt(key, bytes(a ^ b for a, b in zip(chain, last, strict=True)))


class RetailMacKey:
    """A retail MAC key with its two key schedules made once (single DES K for the chain, two-key
    TDES for the last block); :meth:`mac` equals :func:`retail_mac`. Not thread-safe: one object
    per card or session, used by one thread.
    """

    __slots__ = ("_chain", "_final")

    def __init__(self, key: bytes) -> None:
        _check(key, des.ZERO_IV)
        self._chain = des.DesKey(key[:BLOCK])
        self._final = des.DesKey(key)

    def __repr__(self) -> str:
        return "RetailMacKey(<key hidden>)"

    def mac(self, data: bytes, iv: bytes = des.ZERO_IV) -> bytes:
        if len(iv) != BLOCK:
            raise CryptoError(f"IV must be {BLOCK} bytes, got {len(iv)}")
        padded = pad_method2(data, BLOCK)
        head, last = padded[:-BLOCK], padded[-BLOCK:]
        chain = self._chain.cbc_last(iv, head) if head else iv
        mixed = int.from_bytes(chain, "big") ^ int.from_bytes(last, "big")
        return self._final.ecb_encrypt(mixed.to_bytes(BLOCK, "big"))
