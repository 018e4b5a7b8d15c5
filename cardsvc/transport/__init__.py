"""Moving APDU bytes to and from cards. ``pcsc`` is the only module that imports pyscard."""

from cardsvc.transport.base import CardConnection, ReaderInfo

__all__ = ["CardConnection", "ReaderInfo"]
