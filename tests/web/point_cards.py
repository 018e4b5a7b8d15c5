"""Member cards for the service-point and partner page tests, on a server's own data directory.

The live server (tests/support/browser.py) holds members and keys but no issued cards. This issues
NTAG 424 DNA cards the way a station leaves them — an issued row with the chip UID's keyed hash and
a credential signed by the server's issuer key — and computes what the emulated card shows: its QR
text, and the SUN URL a phone reads on the next tap (the emulator's SUN functions with the
server's diversified keys). No shortcut on the verifying side: the pages verify these cards with
the server's real workflows.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, select

from cardsvc.cardcrypto import sun
from cardsvc.config import Settings
from cardsvc.credential import CredentialClaims, Signer, issue_credential, open_key_store, to_qr_text
from cardsvc.drivers.base import MasterKeys, PersonalisationPlan, driver_for
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.issuance.keys import ensure_master_keys, ensure_uid_index
from cardsvc.profiles import load_profiles
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Batch, Card, CardStatus, JournalState
from cardsvc.registry.db import engine_for, session_factory
from cardsvc.registry.models import Member, MemberStatus
from cardsvc.verification.keys import CardKeys, card_keys_from_store
from cardsvc.verification.seed import seed_programme
from tests.support.cards import DirectConnection

NTAG = "ntag424-dna"


@dataclass
class MemberCard:
    card_number: str
    member_name: str
    uid: bytes
    credential: bytes
    counter: int = field(default=0)

    @property
    def qr(self) -> str:
        return to_qr_text(self.credential)


@dataclass
class CardMaker:
    """Issues cards into ``settings``' database with ``settings``' key store."""

    settings: Settings

    def __post_init__(self) -> None:
        self.store = open_key_store(self.settings)
        self.profiles = load_profiles(self.settings.effective_profiles_dir)
        self.version = ensure_master_keys(self.store, self.profiles[NTAG])
        ensure_uid_index(self.store)
        self.keys: CardKeys = card_keys_from_store(self.store, self.profiles.values(),
                                                   issuer=self.settings.issuer)
        self.engine = engine_for(self.settings)
        self.sessions = session_factory(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def issue(self, count: int) -> list[MemberCard]:
        """``count`` active cards for active members that have none yet."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        signer = self.store.issuer_signer(now=now)
        with self.sessions() as session, session.begin():
            batch = self._batch(session)
            members = self._members_without_card(session, count)
            made = [self._card(session, batch, m, signer, now) for m in members]
        return made

    def _batch(self, session: Session) -> int:
        batch = card_repo.add_batch(session, batch=Batch(
            label=f"web-pages-{secrets.token_hex(4)}", profile=NTAG, key_version=self.version, prefix="29",
            year=2026, valid_days=365), member_ids=[])
        assert batch.id is not None
        return batch.id

    @staticmethod
    def _members_without_card(session: Session, count: int) -> list[Member]:
        carded = select(Card.member_id)
        query = (select(Member).where(Member.status == MemberStatus.active,
                                      Member.id.not_in(carded))  # type: ignore[union-attr]
                 .order_by(func.random()).limit(count))
        members = list(session.exec(query))
        assert len(members) == count, f"only {len(members)} members without a card"
        return members

    def _card(self, session: Session, batch: int, member: Member, signer: Signer,
              now: dt.datetime) -> MemberCard:
        number = f"29{secrets.randbelow(10**10):010d}"
        uid = b"\x04" + os.urandom(6)
        credential = issue_credential(signer, CredentialClaims(
            issuer=self.settings.issuer, card_number=number, issued_at=now,
            expires_at=now + dt.timedelta(days=365), profile="ntag", key_version=self.version))
        assert member.id is not None
        card_repo.add_card(session, card=Card(
            card_number=number, batch_id=batch, member_id=member.id, profile=NTAG, key_version=self.version,
            state=JournalState.issued, status=CardStatus.active, uid_hash=self.keys.uid_hash(uid),
            credential=credential, issued_at=now, expires_at=now + dt.timedelta(days=365)))
        return MemberCard(number, member.name, uid, credential)

    def chip(self, card: MemberCard, sun_base_url: str) -> Ntag424Card:
        """An emulated NTAG 424 DNA chip with ``card``'s UID, personalised by the real driver with the
        server's master keys and the card's credential (what a station writes)."""
        chip = Ntag424Card.blank(uid=card.uid)
        keys = MasterKeys(version=self.version, keys=dict(self.keys.master(self.version)),
                          system_identifier=self.keys.system_identifier)
        plan = PersonalisationPlan(card_number=card.card_number, credential=card.credential, master_keys=keys,
                                   sun_base_url=sun_base_url)
        driver_for(self.profiles[NTAG]).personalise(DirectConnection(chip), plan)
        return chip

    def tap_url(self, card: MemberCard, base: str) -> str:
        """The SUN URL the card mirrors on its next read (its counter moves on)."""
        card.counter += 1
        config = self.profiles[NTAG].config
        assert isinstance(config, Ntag424Config)
        masters = self.keys.master(self.version)
        si = self.keys.system_identifier
        meta = config.card_key(config.sun.meta_read_key, masters, uid=b"", system_identifier=si)
        file_key = config.card_key(config.sun.file_read_key, masters, uid=card.uid, system_identifier=si)
        picc = sun.encrypt_picc_data(meta, card.uid, card.counter, b"\x00" * 5)
        mac = sun.sdm_mac(file_key, card.uid, card.counter)
        return f"{base}?p={picc.hex().upper()}&m={mac.hex().upper()}"

    def programme(self, code: str, *, base: str, quota: int) -> str:
        """A running programme of ``base`` open to every member (no categories, no list)."""
        today = dt.datetime.now(dt.UTC).date()
        with self.sessions() as session, session.begin():
            seed_programme(session, code=code, base_code=base, name=f"测试项目 {code}",
                           starts_on=today - dt.timedelta(days=1), ends_on=today + dt.timedelta(days=30),
                           quota=quota)
        return code

    def count(self, statement: object) -> int:
        with self.sessions() as session:
            return int(session.connection().execute(statement).scalar_one())  # type: ignore[call-overload]
