"""A verification world for tests: a migrated database, keys, members and issued cards.

Everything is built from bytes (no key store): an Ed25519 issuer key, master keys of version 1 for
every role the shipped profiles name, a UID index key. Cards are inserted as issued rows the way
issuance leaves them (uid hash, credential, key version), and the card side of a tap is computed
with the pure SUN / FMCOS functions the emulator uses — so a test can tap, replay, and tamper.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from sqlmodel import Session, select

from cardsvc.cardcrypto import fmcos as fc
from cardsvc.cardcrypto import sun
from cardsvc.config import get_settings
from cardsvc.credential import (
    Algorithm,
    CredentialClaims,
    IssuerKey,
    KeyState,
    SoftwareSigner,
    issue_credential,
    to_qr_text,
)
from cardsvc.profiles import Profile, load_profiles
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Batch, Card, CardStatus, JournalState
from cardsvc.registry.db import make_engine, upgrade_to_head
from cardsvc.registry.models import Category, Member, MemberCategory, MemberStatus, Organisation, OrgKind
from cardsvc.registry.pii import PiiCipher
from cardsvc.verification.db import Database
from cardsvc.verification.keys import CardKeys, IssuerTrust, master_roles
from cardsvc.verification.seed import seed_programme, seed_reference_data
from cardsvc.verification.service import VerificationService
from cardsvc.verification.trustbundle import TrustBundleCache

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
ISSUER = "SZGH"
NTAG = "ntag424-dna"
FMCOS = "fmcos-cpu"
PROGRAMME = "prog-beidaihe-2026"
LIST_SECRET = bytes(range(64, 96))


class Clock:
    """A settable clock shared by the service and the test."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class IssuedCard:
    card_number: str
    member_id: int
    public_id: str
    uid: bytes
    profile: str
    credential: bytes
    counter: int = 0

    @property
    def qr(self) -> str:
        return to_qr_text(self.credential)


@dataclass
class World:
    db: Database
    svc: VerificationService
    signer: SoftwareSigner
    bundle_signer: SoftwareSigner
    cipher: PiiCipher
    clock: Clock
    profiles: dict[str, Profile]
    card_keys: CardKeys
    next_number: int = 1
    cards: list[IssuedCard] = field(default_factory=list)

    # --- registry rows -----------------------------------------------------------------------

    def session(self) -> Session:
        return self.db.session()

    def add_member(self, name: str = "张三丰", *, id_number: str = "11010519491231002X",
                   status: MemberStatus = MemberStatus.active, categories: tuple[str, ...] = ()) -> Member:
        with self.session() as s:
            org = _org(s)
            member = Member(name=name, org_id=org, status=status)
            member.id_sealed = self.cipher.seal(id_number, record=member.public_id, field="id_number")
            member.id_index = self.cipher.blind_index(id_number + member.public_id, field="id_number")
            s.add(member)
            s.flush()
            for code in categories:
                category = s.exec(select(Category).where(Category.code == code)).one()
                s.add(MemberCategory(member_id=member.id, category_id=category.id))
            s.commit()
            return member

    def issue_card(self, member: Member | None = None, *, profile: str = NTAG,
                   status: CardStatus = CardStatus.active, uid: bytes | None = None) -> IssuedCard:
        member = member or self.add_member()
        assert member.id is not None
        number = f"2026{self.next_number:08d}"
        self.next_number += 1
        uid = uid or (os.urandom(7) if profile == NTAG else os.urandom(4))
        credential = issue_credential(self.signer, CredentialClaims(
            issuer=ISSUER, card_number=number, issued_at=NOW - dt.timedelta(days=1),
            expires_at=NOW + dt.timedelta(days=365), profile=profile[:4], key_version=1))
        with self.session() as s:
            batch = _batch(s, profile)
            card_repo.add_card(s, card=Card(
                card_number=number, batch_id=batch, member_id=member.id, profile=profile, key_version=1,
                state=JournalState.issued, status=status, uid_hash=self.card_keys.uid_hash(uid),
                credential=credential, issued_at=NOW - dt.timedelta(days=1),
                expires_at=NOW + dt.timedelta(days=365)))
            s.commit()
        card = IssuedCard(number, member.id, member.public_id, uid, profile, credential)
        self.cards.append(card)
        return card

    def set_card_status(self, card: IssuedCard, status: CardStatus) -> None:
        with self.session() as s:
            row = card_repo.get_card(s, card_number=card.card_number)
            row.status = status
            s.add(row)
            s.commit()

    # --- the card side -----------------------------------------------------------------------

    def tap_url(self, card: IssuedCard, counter: int | None = None, *,
                base: str = "https://t.example/t") -> str:
        """The SUN URL the card would mirror on its next read (``counter`` defaults to the next one)."""
        if counter is None:
            card.counter += 1
            counter = card.counter
        config = self.profiles[NTAG].config
        assert isinstance(config, Ntag424Config)
        masters = self.card_keys.master(1)
        si = self.card_keys.system_identifier
        meta = config.card_key(config.sun.meta_read_key, masters, uid=b"", system_identifier=si)
        file_key = config.card_key(config.sun.file_read_key, masters, uid=card.uid, system_identifier=si)
        picc = sun.encrypt_picc_data(meta, card.uid, counter, b"\x00" * 5)
        mac = sun.sdm_mac(file_key, card.uid, counter)
        return f"{base}?p={picc.hex().upper()}&m={mac.hex().upper()}"

    def internal_auth(self, card: IssuedCard, challenge: bytes) -> bytes:
        config = self.profiles[FMCOS].config
        assert isinstance(config, FmcosConfig)
        slot = config.key("internal_auth")
        key = slot.derive(self.card_keys.master(1)[slot.master_role], uid=card.uid,
                          aid=config.diversification_aid, system_identifier=self.card_keys.system_identifier,
                          cipher_suite=config.cipher_suite)
        cs = fc.suite(config.cipher_suite)
        return fc.auth_cryptogram(cs, key, challenge[: cs.block_size])

    def programme(self, code: str = PROGRAMME, *, quota: int = 10, base: str = "base-beidaihe",
                  categories: tuple[str, ...] = (), named_list: bool = False) -> str:
        with self.session() as s:
            seed_programme(s, code=code, base_code=base, name="2026年北戴河劳模疗休养", starts_on=NOW.date(),
                           ends_on=(NOW + dt.timedelta(days=30)).date(), quota=quota,
                           categories=categories, named_list=named_list)
            s.commit()
        return code


def _org(session: Session) -> int:
    org = session.exec(select(Organisation).where(Organisation.code == "D01")).first()
    if org is None:
        org = Organisation(code="D01", name="某区总工会", kind=OrgKind.district_federation)
        session.add(org)
        session.flush()
    assert org.id is not None
    return org.id


def _batch(session: Session, profile: str) -> int:
    label = f"test-{profile}"
    batch = session.exec(select(Batch).where(Batch.label == label)).first()
    if batch is None:
        batch = card_repo.add_batch(session, batch=Batch(label=label, profile=profile, key_version=1,
                                                         prefix="2026", year=2026, valid_days=365),
                                    member_ids=[])
    assert batch.id is not None
    return batch.id


def _card_keys(profiles: dict[str, Profile]) -> CardKeys:
    roles = master_roles(profiles.values())
    masters = {1: MappingProxyType({role: os.urandom(16) for role in sorted(roles)})}
    return CardKeys(MappingProxyType(masters), os.urandom(32), ISSUER.encode())


def migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()


def issuer_key(signer: SoftwareSigner) -> IssuerKey:
    return IssuerKey(signer.kid, signer.alg, signer.public_key_bytes(), KeyState.active,
                     NOW - dt.timedelta(days=30), None)


@contextmanager
def make_world(url: str) -> Iterator[World]:
    """A world on the (already migrated) database at ``url``, seeded with reference data."""
    db = Database(make_engine(url))
    with db.session() as s:
        seed_reference_data(s)
        s.commit()
    profiles = load_profiles(get_settings(env="test").effective_profiles_dir)
    signer = SoftwareSigner.generate(Algorithm.eddsa, kid=b"\x11")
    bundle_signer = SoftwareSigner.generate(Algorithm.eddsa, kid=b"\xb1")
    clock = Clock()
    card_keys = _card_keys(profiles)
    cipher = PiiCipher({1: bytes(range(32))}, 1, bytes(range(200, 232)))
    bundles = TrustBundleCache(lambda _now: bundle_signer, [issuer_key(signer)], ISSUER, clock=clock)
    svc = VerificationService(db=db, trust=IssuerTrust.of(ISSUER, [issuer_key(signer)]), card_keys=card_keys,
                              profiles=profiles, cipher=cipher, clock=clock, list_secret=LIST_SECRET,
                              bundles=bundles)
    try:
        yield World(db, svc, signer, bundle_signer, cipher, clock, profiles, card_keys)
    finally:
        db.close()
        db.engine.dispose()


def sqlite_url(directory: Path) -> str:
    url = f"sqlite:///{directory / 'verify.sqlite3'}"
    migrate(url)
    return url
