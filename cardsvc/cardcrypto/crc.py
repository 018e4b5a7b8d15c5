"""CRC32 as NXP DESFire/NTAG 424 DNA use it in ChangeKey (AN12196 §6.16): the JAMCRC variant.

JAMCRC is the IEEE 802.3 CRC32 without the final complement (init ``FFFFFFFF``, reflected, poly
``04C11DB7``, xorout ``00000000``), transmitted least significant byte first.
"""

from __future__ import annotations

import zlib

_MASK = 0xFFFFFFFF


def jamcrc(data: bytes) -> int:
    """The JAMCRC value of ``data`` (catalogue check value for ``b"123456789"`` is ``340BC6D9``)."""
    return zlib.crc32(data) ^ _MASK


def nxp_crc32(data: bytes) -> bytes:
    """The 4 CRC bytes NXP appends in ChangeKey: JAMCRC, little-endian."""
    return jamcrc(data).to_bytes(4, "little")
