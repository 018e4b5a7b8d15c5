"""Registry services: each public method is one transaction (repo functions only flush).

``RegistryService`` is built with a session factory, a :class:`PiiCipher` and a clock; it returns
:class:`MemberPublic` objects with personal fields masked for the audience asked for. Logs name
members by their public id only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from cardsvc.errors import Conflict, InvalidRecord, NotFound, RegistryError
from cardsvc.logging import get_logger
from cardsvc.registry import repo
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.identity import parse_id_number, parse_name, parse_phone
from cardsvc.registry.importer import ImportReport, Progress, import_members
from cardsvc.registry.masking import Audience, PiiKind, mask
from cardsvc.registry.models import (
    FEDERATION_KINDS,
    Consent,
    Member,
    MemberCreate,
    MemberPublic,
    MembershipTransfer,
    MemberStatus,
    Organisation,
    OrganisationPublic,
    new_public_id,
    utcnow,
)
from cardsvc.registry.org_import import OrgImportReport, import_orgs
from cardsvc.registry.pii import PiiCipher

log = get_logger(__name__)

Clock = Callable[[], dt.datetime]
REKEY_BATCH = 1000


@contextmanager
def transaction(sessions: SessionFactory) -> Iterator[Session]:
    """One session, one transaction: committed on success, rolled back on any exception."""
    with database_errors(), sessions() as session, session.begin():
        yield session


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn the database driver's failures into registry errors (the CLI and API map those)."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict("another change to the same member or organisation won the race",
                       hint="run the command again") from exc
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else exc.__class__.__name__
        raise RegistryError(f"database unavailable: {reason}",
                            hint="check CARDSVC_DATABASE_URL and that the database is running") from exc


class RegistryService:
    def __init__(self, sessions: SessionFactory, cipher: PiiCipher, *, clock: Clock = utcnow) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._clock = clock

    def _transaction(self) -> AbstractContextManager[Session]:
        return transaction(self._sessions)

    # --- import --------------------------------------------------------------------------------

    def import_members(self, path: Path, *, org_code: str | None = None, dry_run: bool = False,
                       progress: Progress | None = None) -> ImportReport:
        """Import a member list in one transaction (rolled back when ``dry_run``)."""
        with database_errors(), self._sessions() as session:
            transaction = session.begin()
            try:
                report = import_members(session, self._cipher, path, org_code=org_code,
                                        now=self._clock(), progress=progress)
            except BaseException:
                transaction.rollback()
                raise
            if dry_run:
                transaction.rollback()
            else:
                transaction.commit()
        log.info("import of %s: %d read, %d created, %d updated, %d unchanged, %d rejected%s",
                 report.source, report.rows_read, report.created, report.updated, report.unchanged,
                 report.rejected_rows, " (dry run, rolled back)" if dry_run else "")
        return replace(report, dry_run=dry_run)

    # --- members -------------------------------------------------------------------------------

    def create_member(self, data: MemberCreate, *, audience: Audience = Audience.staff) -> MemberPublic:
        """Register one member (the clerk's form); refuses a person already registered."""
        id_number = parse_id_number(data.id_number, today=self._clock().date())
        phone = parse_phone(data.phone)
        with self._transaction() as session:
            org = self._grassroots(session, data.org_code)
            id_index = self._cipher.blind_index(id_number.value, field="id_number")
            if repo.find_member_by_index(session, id_index=id_index) is not None:
                raise Conflict("this person is already registered", hint="`cardsvc members show` finds them")
            public_id = new_public_id()
            member = Member(public_id=public_id, name=parse_name(data.name), status=data.status,
                            joined_on=data.joined_on, org_id=_id(org), gender=id_number.gender.value,
                            birth_date=id_number.birth_date, id_index=id_index,
                            id_sealed=self._cipher.seal(id_number.value, record=public_id, field="id_number"),
                            key_version=self._cipher.current_version)
            self._set_phone(member, phone)
            repo.save(session, obj=member)
            repo.set_member_categories(session, member_id=_id(member),
                                       category_ids=self._category_ids(session, data.categories))
            repo.add_event(session, member_id=_id(member), action="created")
            return self._public(session, member, audience)

    @staticmethod
    def _grassroots(session: Session, code: str) -> Organisation:
        org = repo.get_org(session, code=code)
        if org.kind in FEDERATION_KINDS:
            raise InvalidRecord(f"{code} is a federation; members belong to grassroots unions",
                                field="org", reason="org_is_federation")
        return org

    @staticmethod
    def _category_ids(session: Session, codes: tuple[str, ...]) -> list[int]:
        known = {c.code: c.id for c in repo.list_categories(session)}
        known.update({c.label: c.id for c in repo.list_categories(session)})
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise InvalidRecord("unknown category", field="categories", reason="unknown_category")
        return [known[c] or 0 for c in codes]

    def _set_phone(self, member: Member, phone: str | None) -> None:
        member.phone_index = self._cipher.blind_index(phone, field="phone") if phone else None
        member.phone_sealed = (self._cipher.seal(phone, record=member.public_id, field="phone")
                               if phone else None)

    def get_member(self, public_id: str, *, audience: Audience = Audience.staff) -> MemberPublic:
        with self._transaction() as session:
            return self._public(session, repo.get_member(session, public_id=public_id), audience)

    def find_member(self, id_number: str, *, audience: Audience = Audience.staff) -> MemberPublic:
        """Look a member up by ID number through the blind index."""
        value = parse_id_number(id_number, today=self._clock().date()).value
        with self._transaction() as session:
            member = repo.find_member_by_index(
                session, id_index=self._cipher.blind_index(value, field="id_number"))
            if member is None:
                raise NotFound("no member with this ID number")
            return self._public(session, member, audience)

    def list_members(self, *, org_code: str | None = None, limit: int = 50, offset: int = 0,
                     audience: Audience = Audience.staff) -> list[MemberPublic]:
        with self._transaction() as session:
            org_id = repo.get_org(session, code=org_code).id if org_code else None
            members = repo.list_members(session, org_id=org_id, limit=limit, offset=offset)
            return [self._public(session, m, audience) for m in members]

    def reveal_id_number(self, public_id: str) -> str:
        """The plain ID number, for the issuance workflow (never for display)."""
        with self._transaction() as session:
            member = repo.get_member(session, public_id=public_id)
            if member.id_sealed is None:
                raise NotFound(f"member {public_id} has been erased")
            return self._cipher.open(member.id_sealed, record=member.public_id, field="id_number")

    def transfer(self, public_id: str, *, to_org: str, on: dt.date | None = None,
                 reason: str = "") -> MemberPublic:
        """关系接转: move a member to another grassroots union, keeping a history row."""
        with self._transaction() as session:
            member = self._live(session, public_id)
            target = self._grassroots(session, to_org)
            if target.id == member.org_id:
                raise Conflict(f"member {public_id} already belongs to {to_org}")
            repo.add_transfer(session, transfer=MembershipTransfer(
                member_id=_id(member), from_org_id=member.org_id, to_org_id=_id(target),
                transferred_on=on or self._clock().date(), reason=reason[:200]))
            member.org_id, member.updated_at = _id(target), self._clock()
            repo.save(session, obj=member)
            repo.add_event(session, member_id=_id(member), action="transferred", detail=f"to {to_org}")
            log.info("member %s transferred to %s", public_id, to_org)
            return self._public(session, member, Audience.staff)

    def erase(self, public_id: str) -> None:
        """Remove personal data; keep the row, its public id, history and consents (pseudonymous)."""
        with self._transaction() as session:
            member = self._live(session, public_id)
            member.name, member.gender, member.birth_date, member.joined_on = "", None, None, None
            member.id_sealed = member.id_index = member.phone_sealed = member.phone_index = None
            member.key_version, member.status = None, MemberStatus.erased
            member.erased_at = member.updated_at = self._clock()
            repo.save(session, obj=member)
            repo.set_member_categories(session, member_id=_id(member), category_ids=())
            repo.add_event(session, member_id=_id(member), action="erased")
            log.info("member %s erased", public_id)

    def _live(self, session: Session, public_id: str) -> Member:
        member = repo.get_member(session, public_id=public_id)
        if member.status == MemberStatus.erased:
            raise Conflict(f"member {public_id} has been erased")
        return member

    def record_consent(self, public_id: str, *, partner: str, purpose: str) -> None:
        with self._transaction() as session:
            member = self._live(session, public_id)
            repo.save(session, obj=Consent(member_id=_id(member), partner=partner, purpose=purpose,
                                           granted_at=self._clock()))
            repo.add_event(session, member_id=_id(member), action="consent", detail=partner)

    def withdraw_consent(self, public_id: str, *, partner: str) -> int:
        """Withdraw every open consent for ``partner``; returns how many were open."""
        with self._transaction() as session:
            member = repo.get_member(session, public_id=public_id)
            open_consents = repo.open_consents(session, member_id=_id(member), partner=partner)
            for consent in open_consents:
                consent.withdrawn_at = self._clock()
                repo.save(session, obj=consent)
            repo.add_event(session, member_id=_id(member), action="consent_withdrawn", detail=partner)
            return len(open_consents)

    def rekey(self) -> int:
        """Re-seal every member under the current data key, in committed batches; returns the count."""
        done = 0
        while True:
            with self._transaction() as session:
                batch = repo.members_needing_rekey(session, current_version=self._cipher.current_version,
                                                   limit=REKEY_BATCH)
                for member in batch:
                    self._reseal(member)
                    repo.save(session, obj=member)
            done += len(batch)
            if len(batch) < REKEY_BATCH:
                log.info("rekey: %d members re-sealed under data key %d", done, self._cipher.current_version)
                return done

    def _reseal(self, member: Member) -> None:
        record = member.public_id
        if member.id_sealed is not None:
            member.id_sealed = self._cipher.reseal(member.id_sealed, record=record, field="id_number")
        if member.phone_sealed is not None:
            member.phone_sealed = self._cipher.reseal(member.phone_sealed, record=record, field="phone")
        member.key_version = self._cipher.current_version

    # --- output --------------------------------------------------------------------------------

    def _public(self, session: Session, member: Member, audience: Audience) -> MemberPublic:
        record = member.public_id
        id_number = (self._cipher.open(member.id_sealed, record=record, field="id_number")
                     if member.id_sealed else "")
        phone = (self._cipher.open(member.phone_sealed, record=record, field="phone")
                 if member.phone_sealed else "")
        org = session.get(Organisation, member.org_id)
        return MemberPublic(
            public_id=record, name=mask(PiiKind.name, member.name) if member.name else "",
            status=member.status, joined_on=member.joined_on if audience is Audience.staff else None,
            id_number=mask(PiiKind.id_number, id_number, audience=audience) if id_number else "",
            phone=mask(PiiKind.phone, phone, audience=audience) if phone else "",
            gender=member.gender if audience is Audience.staff else None,
            birth_date=member.birth_date if audience is Audience.staff else None,
            org_code=org.code if org else "",
            categories=repo.member_category_codes(session, member_id=_id(member)))


class OrgService:
    """The union hierarchy; needs no PII keys."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def _transaction(self) -> AbstractContextManager[Session]:
        return transaction(self._sessions)

    def import_orgs(self, path: Path) -> OrgImportReport:
        """Import the union hierarchy; nothing is written if any row has a problem."""
        with self._transaction() as session:
            report = import_orgs(session, path)
        log.info("org import of %s: %d created, %d updated, %d problems", report.source, report.created,
                 report.updated, len(report.problems))
        return report

    def list_orgs(self) -> list[OrganisationPublic]:
        with self._transaction() as session:
            orgs = repo.list_orgs(session)
            codes = {o.id: o.code for o in orgs}
            return [OrganisationPublic(code=o.code, name=o.name, kind=o.kind, uscc=o.uscc, contact=o.contact,
                                       parent_code=codes.get(o.parent_id)) for o in orgs]


def _id(row: Member | Organisation) -> int:
    if row.id is None:  # pragma: no cover - rows come from the database or were flushed
        raise NotFound("row has no id yet")
    return row.id

