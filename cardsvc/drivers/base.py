"""The driver contract shared by every card family.

A driver knows commands, never members: it receives a :class:`PersonalisationPlan` (card number,
opaque credential bytes, master keys of one version) and moves bytes over a
:class:`~cardsvc.transport.base.CardConnection`. Protocol cryptography lives in
:mod:`cardsvc.cardcrypto`; profiles (layout, key slots, access rights) in :mod:`cardsvc.profiles`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from cardsvc.errors import ProfileError
from cardsvc.profiles import Profile
from cardsvc.transport.base import CardConnection

MAX_CREDENTIAL_SIZE = 128


class CardState(StrEnum):
    """What the status probe can tell about a card without spending retry counters."""

    factory = "factory"
    partial = "partial"
    personalised = "personalised"
    unknown = "unknown"


@dataclass(frozen=True, slots=True)
class MasterKeys:
    """Card master keys of one version, by key role (the profile names the roles).

    ``system_identifier`` is the AN10922 system identifier (issuer/scheme bytes).
    """

    version: int
    keys: Mapping[str, bytes]
    system_identifier: bytes

    def __repr__(self) -> str:  # never print key material
        return f"MasterKeys(version={self.version}, roles={sorted(self.keys)})"


@dataclass(frozen=True, slots=True)
class PersonalisationPlan:
    card_number: str
    credential: bytes
    master_keys: MasterKeys
    sun_base_url: str | None = None  # NTAG 424 DNA: the phone-tap page; the driver adds SDM params

    def __repr__(self) -> str:
        return f"PersonalisationPlan(card_number={self.card_number!r}, kv={self.master_keys.version})"


@dataclass(frozen=True, slots=True)
class CardReadout:
    """What a read-back returns: enough for issuance to check the card against its journal row."""

    uid: bytes
    card_number: str
    credential: bytes
    key_version: int


@dataclass(frozen=True, slots=True)
class StatusReport:
    state: CardState
    uid: bytes | None
    detail: str
    key_slots: Mapping[str, str] = field(default_factory=dict)  # role -> "factory"/"diversified"/"unknown"


@dataclass(frozen=True, slots=True)
class CardProof:
    """A live proof produced by the card, checked by the verifier with pure cardcrypto code.

    ``kind`` is ``sun`` (NTAG 424 DNA: ``payload`` is the NDEF URL as read) or ``internal_auth``
    (FMCOS: ``payload`` is the cryptogram over ``challenge``).
    """

    kind: str
    uid: bytes
    challenge: bytes
    payload: bytes


ProgressCallback = Callable[[str], None]


class CardDriver(Protocol):
    """One card family's operations. Constructed with the matching profile."""

    profile: Profile

    def read_uid(self, conn: CardConnection) -> bytes: ...

    def status(self, conn: CardConnection, master_keys: MasterKeys | None = None) -> StatusReport: ...

    def personalise(
        self, conn: CardConnection, plan: PersonalisationPlan,
        progress: ProgressCallback | None = None,
    ) -> CardReadout: ...

    def read_back(self, conn: CardConnection, master_keys: MasterKeys) -> CardReadout: ...

    def prove(self, conn: CardConnection, challenge: bytes) -> CardProof: ...


_DRIVERS = {
    "ntag424": "cardsvc.drivers.ntag424:Ntag424Driver",
    "fmcos": "cardsvc.drivers.fmcos:FmcosDriver",
}


def driver_for(profile: Profile) -> CardDriver:
    """The driver for a profile's family."""
    target = _DRIVERS.get(profile.family)
    if target is None:
        raise ProfileError(f"no driver for family {profile.family!r}", file=str(profile.source),
                           field="family")
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    driver: CardDriver = cls(profile)
    return driver
