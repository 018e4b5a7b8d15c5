"""Batches: create (member selection, number scheme, key version), list, status, and the context a
station needs (driver, master keys, signer, UID hasher) built from settings and the key store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from cardsvc.credential.claims import CredentialClaims
from cardsvc.credential.keystore import KeyStore
from cardsvc.credential.token import issue_credential
from cardsvc.drivers.base import driver_for
from cardsvc.errors import InvalidRecord, IssuanceError, MalformedCredential, NotFound
from cardsvc.issuance.journal import Clock
from cardsvc.issuance.keys import (
    UidHasher,
    current_key_version,
    ensure_master_keys,
    ensure_uid_index,
    load_master_keys,
    system_identifier,
)
from cardsvc.issuance.numbering import DEFAULT_LENGTH, NumberScheme
from cardsvc.issuance.workflow import BatchContext, credential_profile_code, sun_url
from cardsvc.logging import get_logger
from cardsvc.profiles import Profile
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Batch, JournalState
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.models import Category, Member, MemberCategory, MemberStatus, Organisation, utcnow

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which members a batch is for: an organisation subtree, a category, a list of member ids."""

    org_code: str | None = None
    category: str | None = None
    member_ids_file: Path | None = None

    def describe(self) -> str:
        parts = [f"org={self.org_code}" if self.org_code else "",
                 f"category={self.category}" if self.category else "",
                 f"file={self.member_ids_file.name}" if self.member_ids_file else ""]
        return " ".join(p for p in parts if p) or "all active members"


@dataclass(frozen=True, slots=True)
class BatchSpec:
    label: str
    profile: Profile
    prefix: str
    year: int
    valid_days: int
    selection: Selection
    key_version: int | None = None
    number_length: int = DEFAULT_LENGTH


@dataclass(frozen=True, slots=True)
class BatchStatus:
    label: str
    profile: str
    key_version: int
    members: int
    pending_members: int
    states: Mapping[str, int]

    @property
    def issued(self) -> int:
        return self.states.get(JournalState.issued.value, 0)


class BatchService:
    def __init__(self, sessions: SessionFactory, *, clock: Clock = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    def create(self, spec: BatchSpec, store: KeyStore, *, issuer: str,
               init_keys: bool = False) -> BatchStatus:
        """Create the batch with its member list frozen; master keys must exist unless ``init_keys``.

        Refuses a batch whose worst-case credential (longest number, most categories) would not
        fit the card's 128 bytes, before any card is touched.
        """
        scheme = NumberScheme(spec.prefix, spec.year, spec.number_length)
        if spec.valid_days < 1:
            raise InvalidRecord("validity must be at least one day", field="valid_days")
        version = _key_version(store, spec, init_keys)
        ensure_uid_index(store)
        with self._sessions() as session, session.begin():
            if session.exec(select(Batch).where(col(Batch.label) == spec.label)).first() is not None:
                raise IssuanceError(f"batch {spec.label!r} already exists")
            members = select_members(session, spec.selection)
            if not members:
                raise IssuanceError(f"no active member matches {spec.selection.describe()}")
            batch = Batch(label=spec.label, profile=spec.profile.name, key_version=version,
                          prefix=scheme.prefix, year=scheme.year, number_length=scheme.length,
                          valid_days=spec.valid_days, selection=spec.selection.describe()[:400],
                          created_at=self._clock())
            card_repo.add_batch(session, batch=batch, member_ids=members)
            worst = card_repo.max_categories(session, batch_id=batch.id or 0)
            self._check_credential_fits(store, spec, scheme, issuer, version, worst)
            card_repo.ensure_counter(session, prefix=scheme.prefix, year=scheme.year)
            log.info("batch %s: %d members, profile %s, key version %d", spec.label, len(members),
                     spec.profile.name, version)
            return _status(session, batch)

    def _check_credential_fits(self, store: KeyStore, spec: BatchSpec, scheme: NumberScheme, issuer: str,
                               version: int, categories: int) -> None:
        now = self._clock().replace(microsecond=0)
        claims = CredentialClaims(
            issuer=issuer, card_number=scheme.format(scheme.capacity), issued_at=now,
            expires_at=now + dt.timedelta(days=spec.valid_days),
            profile=credential_profile_code(spec.profile.name), key_version=version,
            categories=tuple("99" for _ in range(categories)))
        try:
            issue_credential(store.issuer_signer(now=now), claims)
        except MalformedCredential as exc:
            raise IssuanceError(
                f"credentials of this batch would not fit the card: {exc.message}",
                hint="use a shorter issuer code (CARDSVC_ISSUER), a shorter number length, or fewer "
                     "categories per member") from exc

    def get(self, label: str) -> Batch:
        with self._sessions() as session:
            return card_repo.get_batch(session, label=label)

    def status(self, label: str) -> BatchStatus:
        with self._sessions() as session:
            return _status(session, card_repo.get_batch(session, label=label))

    def list(self) -> list[BatchStatus]:
        with self._sessions() as session:
            return [_status(session, b) for b in card_repo.list_batches(session)]


def _key_version(store: KeyStore, spec: BatchSpec, init_keys: bool) -> int:
    if init_keys:
        ensure_master_keys(store, spec.profile)
    if spec.key_version is not None:
        load_master_keys(store, spec.profile, version=spec.key_version, system_identifier=b"check")
        return spec.key_version
    return current_key_version(store, spec.profile)


def _status(session: Session, batch: Batch) -> BatchStatus:
    batch_id = batch.id or 0
    return BatchStatus(label=batch.label, profile=batch.profile, key_version=batch.key_version,
                       members=card_repo.batch_member_count(session, batch_id=batch_id),
                       pending_members=card_repo.pending_members(session, batch_id=batch_id),
                       states=card_repo.state_counts(session, batch_id=batch_id))


def select_members(session: Session, selection: Selection) -> list[int]:
    """Active member ids matching every given criterion."""
    query = sa_select(col(Member.id)).where(col(Member.status) == MemberStatus.active)
    if selection.org_code:
        query = query.where(col(Member.org_id).in_(org_subtree(session, selection.org_code)))
    if selection.category:
        query = query.where(col(Member.id).in_(_category_members(session, selection.category)))
    if selection.member_ids_file:
        query = query.where(col(Member.public_id).in_(read_member_ids(selection.member_ids_file)))
    return [int(i) for i in session.execute(query).scalars()]


def org_subtree(session: Session, code: str) -> list[int]:
    orgs = list(session.exec(select(Organisation)))
    root = next((o for o in orgs if o.code == code), None)
    if root is None or root.id is None:
        raise NotFound(f"no organisation with code {code!r}")
    children: dict[int | None, list[int]] = {}
    for org in orgs:
        children.setdefault(org.parent_id, []).append(org.id or 0)
    found, todo = [root.id], [root.id]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _category_members(session: Session, code: str) -> list[int]:
    category = session.exec(select(Category).where(col(Category.code) == code)).first()
    if category is None:
        raise NotFound(f"no member category {code!r}")
    query = sa_select(col(MemberCategory.member_id)).where(col(MemberCategory.category_id) == category.id)
    return [int(i) for i in session.execute(query).scalars()]


def read_member_ids(path: Path) -> list[str]:
    """Member public ids, one per line (``#`` comments and blank lines ignored)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidRecord(f"cannot read {path.name}: {exc.strerror}", field="members_file") from exc
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


def batch_context(batch: Batch, profiles: Mapping[str, Profile], store: KeyStore, *, issuer: str,
                  public_base_url: str, now: dt.datetime) -> BatchContext:
    """Driver, master keys, signer and UID hasher for a batch (all from the key store)."""
    profile = profiles.get(batch.profile)
    if profile is None:
        raise IssuanceError(f"batch {batch.label} uses profile {batch.profile!r}, which is not installed")
    driver = driver_for(profile)
    keys = load_master_keys(store, profile, version=batch.key_version,
                            system_identifier=system_identifier(issuer))
    base = sun_url(public_base_url) if profile.family == "ntag424" else None
    return BatchContext(batch=batch, driver=driver, master_keys=keys, signer=store.issuer_signer(now=now),
                        issuer_keys=store.issuer_keys(), uid_hash=UidHasher.from_store(store),
                        issuer=issuer, sun_base_url=base, profiles=dict(profiles))
