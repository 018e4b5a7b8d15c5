"""APDU trace logging at :data:`cardsvc.logging.TRACE`, with key material and cryptograms redacted.

A small table keyed by (CLA mask, CLA, INS) says which commands carry secrets in their data field,
and which answer with secrets; those fields are logged as ``[redacted n bytes]``. The header,
lengths and status words are always shown: they are what a trace is for.

Callers check :func:`enabled` first (one integer compare) so a disabled trace costs nothing on the
per-APDU path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cardsvc.logging import TRACE

_log = logging.getLogger("cardsvc.transport.apdu")


@dataclass(frozen=True, slots=True)
class Redaction:
    """Commands whose ``CLA & cla_mask == cla`` and ``INS == ins``; which halves hold secrets."""

    cla_mask: int
    cla: int
    ins: int
    command: bool
    response: bool
    what: str


REDACTIONS: tuple[Redaction, ...] = (
    # NXP native commands wrapped in ISO 7816 (CLA 90): NTAG 424 DNA, DESFire.
    Redaction(0xFF, 0x90, 0xC4, command=True, response=False, what="ChangeKey"),
    Redaction(0xFF, 0x90, 0x71, command=True, response=True, what="AuthenticateEV2First"),
    Redaction(0xFF, 0x90, 0x77, command=True, response=True, what="AuthenticateEV2NonFirst"),
    Redaction(0xFF, 0x90, 0xAF, command=True, response=True, what="additional frame (auth)"),
    # ISO / FMCOS (any CLA variant with secure messaging bits).
    Redaction(0xF0, 0x00, 0x82, command=True, response=False, what="EXTERNAL AUTHENTICATE"),
    Redaction(0xF0, 0x00, 0x88, command=True, response=True, what="INTERNAL AUTHENTICATE"),
    Redaction(0xF0, 0x00, 0x20, command=True, response=False, what="VERIFY (PIN)"),
    Redaction(0xF0, 0x00, 0x24, command=True, response=False, what="CHANGE REFERENCE DATA"),
    Redaction(0xFB, 0x80, 0xD4, command=True, response=False, what="WRITE KEY"),
)


def _rule(apdu: bytes) -> Redaction | None:
    if len(apdu) < 2:
        return None
    cla, ins = apdu[0], apdu[1]
    return next((r for r in REDACTIONS if cla & r.cla_mask == r.cla and ins == r.ins), None)


def enabled() -> bool:
    return _log.isEnabledFor(TRACE)


def render_command(apdu: bytes) -> str:
    """The command as hex, data field redacted when the table says so."""
    rule = _rule(apdu)
    if rule is None or not rule.command or len(apdu) <= 5:
        return apdu.hex().upper()
    return f"{apdu[:5].hex().upper()} [redacted {len(apdu) - 5} bytes] ({rule.what})"


def render_response(apdu: bytes, response: bytes) -> str:
    """The response as hex, data redacted (status word kept) when the command's answer is secret."""
    rule = _rule(apdu)
    if rule is None or not rule.response or len(response) <= 2:
        return response.hex().upper()
    return f"[redacted {len(response) - 2} bytes] {response[-2:].hex().upper()}"


def trace_exchange(reader: str, apdu: bytes, response: bytes, elapsed_s: float) -> None:
    """Log one command/response pair (call only when :func:`enabled`)."""
    _log.log(TRACE, "%s > %s", reader, render_command(apdu))
    _log.log(TRACE, "%s < %s (%.0f us)", reader, render_response(apdu, response), elapsed_s * 1e6)
