"""The FMCOS status marker: a 3-byte file that says how far personalisation got, and what the
status probe reports for each stage.

The marker is ``state ‖ ~state ‖ key version``. UPDATE BINARY may tear (the first bytes written,
the rest not), so :func:`decode_marker` maps each torn pattern to the stage whose recovery is safe.
"""

from __future__ import annotations

from enum import Enum

from cardsvc.drivers.base import CardState, StatusReport
from cardsvc.errors import CardIntegrityError

MARKER_SIZE = 3


class Stage(Enum):
    """What the status marker says about personalisation progress."""

    building = 0x00  # no marker yet, or the INTENT write was torn
    intent = 0x01  # application complete; the MF key change may or may not have happened
    complete = 0x02


def encode_marker(stage: Stage, key_version: int) -> bytes:
    return bytes((stage.value, stage.value ^ 0xFF, key_version & 0xFF))


def decode_marker(raw: bytes) -> tuple[Stage | None, int]:
    """The stage and key version in a marker; a torn write (state byte only) maps to the stage
    whose recovery is safe; any other pattern gives ``None`` (not ours). A read of another
    length is a :class:`CardIntegrityError`."""
    if len(raw) != MARKER_SIZE:
        raise CardIntegrityError(f"status marker read returned {len(raw)} bytes, not {MARKER_SIZE}")
    state, check, version = raw[0], raw[1], raw[2]
    if (state, check) == (0x00, 0x00) or (state, check) == (0x01, 0x00):
        return Stage.building, version
    if (state, check) in ((0x01, 0xFE), (0x02, 0xFE)):
        return Stage.intent, version
    if (state, check) == (0x02, 0xFD):
        return Stage.complete, version
    return None, version


def report_for(stage: Stage | None, version: int, uid: bytes) -> StatusReport:
    if stage is Stage.complete:
        return StatusReport(CardState.personalised, uid, f"personalised, key version {version}",
                            slot_states("diversified", "diversified"))
    if stage is Stage.intent:
        return StatusReport(CardState.partial, uid, "application written; MF admin key change "
                            "pending or unconfirmed", slot_states("unknown", "diversified"))
    if stage is Stage.building:
        return StatusReport(CardState.partial, uid, "application being built; the MF admin key is "
                            "still the factory key", slot_states("factory", "unknown"))
    return StatusReport(CardState.unknown, uid, "status marker not written by cardsvc",
                        slot_states("unknown", "unknown"))


def slot_states(mf_admin: str, application: str) -> dict[str, str]:
    """Key-slot states by role: the MF admin key, and the three application keys together."""
    return {"mf_admin": mf_admin, "app_admin": application, "internal_auth": application,
            "line_protection": application}
