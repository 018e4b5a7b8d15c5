"""ISO 7816-4 APDUs: command/response model, status words, response processors, BER-TLV. Pure."""

from cardsvc.apdu.model import SW_OK, CommandApdu, ResponseApdu
from cardsvc.apdu.processors import (
    Transmit,
    chain_commands,
    get_response,
    retry_wrong_le,
    standard_processors,
)
from cardsvc.apdu.tlv import Tlv

__all__ = [
    "SW_OK",
    "CommandApdu",
    "ResponseApdu",
    "Tlv",
    "Transmit",
    "chain_commands",
    "get_response",
    "retry_wrong_le",
    "standard_processors",
]
