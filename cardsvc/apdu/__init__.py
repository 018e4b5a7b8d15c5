"""ISO 7816-4 APDUs: command/response model, status words, response processors, BER-TLV. Pure."""

from cardsvc.apdu.model import SW_OK, CommandApdu, ResponseApdu

__all__ = ["SW_OK", "CommandApdu", "ResponseApdu"]
