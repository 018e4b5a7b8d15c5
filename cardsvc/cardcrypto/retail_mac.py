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


def retail_mac(key: bytes, data: bytes, iv: bytes = des.ZERO_IV) -> bytes:
    """The full 8-byte MAC algorithm 3 value over ``data`` with padding method 2; callers truncate.

    The last step ``E(K, D(K', E(K, x)))`` is exactly two-key TDES of ``x`` = last block ⊕ the
    single-DES CBC chain over the blocks before it, so two cipher contexts suffice.
    """
    if len(key) != KEY_SIZE:
        raise CryptoError(f"retail MAC key must be {KEY_SIZE} bytes, got {len(key)}")
    if len(iv) != BLOCK:
        raise CryptoError(f"IV must be {BLOCK} bytes, got {len(iv)}")
    padded = pad_method2(data, BLOCK)
    head, last = padded[:-BLOCK], padded[-BLOCK:]
    chain = des.cbc_encrypt(key[:BLOCK], iv, head)[-BLOCK:] if head else iv
    return des.ecb_encrypt(key, bytes(a ^ b for a, b in zip(chain, last, strict=True)))
