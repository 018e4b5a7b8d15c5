"""ISO/IEC 9797-1 padding method 2 (``80`` then ``00``…), the one padding every card family uses:
NXP EV2 FULL mode and AN10922 (AES, 16-byte blocks), FMCOS MACs (DES, 8) and the SM4 MAC (16).

Method 2 always pads: a message that already fills whole blocks gains one more block.
"""

from __future__ import annotations

from cardsvc.errors import CryptoError


def pad_method2(data: bytes, block: int) -> bytes:
    """Append ``80`` then zeros up to a whole number of ``block``-byte blocks (always pads)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def unpad_method2(data: bytes, block: int) -> bytes:
    """Remove method-2 padding; raises :class:`CryptoError` when the padding is not well formed."""
    if not data or len(data) % block:
        raise CryptoError(f"padded data must be whole {block}-byte blocks, got {len(data)} bytes")
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= block:
        raise CryptoError("ISO/IEC 9797-1 padding method 2 not found")
    return stripped[:-1]
