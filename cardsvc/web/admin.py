"""What the admin pages run: the same services as the CLI and the API, each change audit-logged.

* API clients: :func:`cardsvc.verification.tokens.create_client` / ``revoke_client`` over the app's
  client store (the token is returned once and never stored), audited like ``POST /v1/clients``.
* Staff users: :class:`cardsvc.registry.staff.StaffAccounts` (create, disable, unlock).
* Reference data: service points and items, partner bases, programmes
  (:func:`cardsvc.verification.seed.seed_programme`), saved with the verification repository.
* Consents and erasure: :class:`cardsvc.registry.services.RegistryService`; members' requests for
  either are queued in :mod:`cardsvc.registry.privacy_requests` and answered in one transaction with
  the withdrawal or erasure they ask for.
* The audit chain: :func:`cardsvc.verification.audit.verify_chain` over the stored rows.

The actor of every audit row is the page user (``web:<staff id>``); subjects are codes, client ids,
usernames or member public ids — never personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import select
from sqlmodel import Session, col

from cardsvc.api.services import Services
from cardsvc.errors import AuditIntegrityError, Conflict, InvalidRecord, NotConfigured, NotFound
from cardsvc.logging import get_logger
from cardsvc.registry import privacy_requests as requests
from cardsvc.registry import repo as registry_repo
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.keys import cipher_from_store
from cardsvc.registry.models import Category, Consent, Member, MemberEvent
from cardsvc.registry.privacy_models import PrivacyRequest, RequestKind, RequestStatus
from cardsvc.registry.services import RegistryService, database_errors
from cardsvc.registry.staff import NewStaff, StaffAccounts, StaffListing
from cardsvc.registry.verification_models import (
    PartnerBase,
    Programme,
    ProgrammeMember,
    ServiceItem,
    ServicePoint,
)
from cardsvc.verification.audit import AuditEvent, Outcome, checkpoint, verify_chain
from cardsvc.verification.db import Database
from cardsvc.verification.roles import Role
from cardsvc.verification.seed import seed_programme
from cardsvc.verification.store import DbClientStore, append_event, read_audit
from cardsvc.verification.tokens import ClientRecord, IssuedToken, new_client
from cardsvc.web.context import WebContext

log = get_logger(__name__)
MAX_NAMED = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProgrammeSpec:
    code: str
    base_code: str
    name: str
    starts_on: dt.date
    ends_on: dt.date
    quota: int
    categories: tuple[str, ...] = ()
    named: tuple[str, ...] = ()  # member public ids: a named list instead of categories


@dataclass(frozen=True, slots=True)
class ConsentRow:
    id: int
    member: str  # public id (pseudonymous)
    partner: str
    purpose: str
    granted_at: dt.datetime
    withdrawn_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class AuditStatus:
    """``ok``: every row verified; else ``broken_at`` is the first bad row's seq."""

    ok: bool
    rows: int
    verified_to: int | None  # seq of the last good row (None: none)
    broken_at: int | None
    problem: str
    tree_head: str


class AdminDesk:
    """The admin pages' actions for one signed-in admin (``actor`` = ``web:<staff id>``)."""

    def __init__(self, web: WebContext, services: Services, actor: str) -> None:
        if services.verification is None:
            log.warning("the admin pages have no database services")
            raise NotConfigured
        self.web, self.services, self.actor = web, services, actor
        self.db: Database = services.verification.db

    # --- audit ------------------------------------------------------------------------------

    def _event(self, event_type: str, subject: str, reason: str) -> AuditEvent:
        return AuditEvent(event_type=event_type, actor=self.actor, subject=subject[:64], outcome=Outcome.ok,
                          reason=reason, timestamp=self.services.clock())

    def audited(self, event_type: str, subject: str, reason: str, change: Callable[[Session], T]) -> T:
        """Run ``change`` and append its audit row in the same transaction: both commit or neither."""

        def work(session: Session) -> T:
            result = change(session)
            append_event(session, self._event(event_type, subject, reason))
            return result

        with database_errors():
            return self.db.transact(work)

    # --- API clients ------------------------------------------------------------------------

    async def clients(self) -> list[ClientRecord]:
        return list(await self.services.clients.list())

    async def create_client(self, *, label: str, role: Role, point: str | None,
                            base: str | None) -> IssuedToken:
        issued = new_client(label=label, role=role, service_point_id=point, partner_base_id=base,
                            clock=self.services.clock)

        def create() -> None:
            self.check_places(point, base)
            self.audited("client.create", issued.client.client_id, "created",
                         lambda s: DbClientStore.add_sync(s, issued.client))

        await anyio.to_thread.run_sync(create)
        log.info("client %s created with role %s", issued.client.client_id, role.value)
        return issued

    async def revoke_client(self, client_id: str) -> ClientRecord:
        record = await anyio.to_thread.run_sync(lambda: self.audited(
            "client.revoke", client_id, "revoked", lambda s: DbClientStore.revoke_sync(s, client_id)))
        log.info("client %s revoked", client_id)
        return record

    # --- staff users ------------------------------------------------------------------------

    def _staff(self, session: Session) -> StaffAccounts:
        return self.web.accounts.joined(session)

    def staff(self) -> list[StaffListing]:
        return self.web.accounts.list()

    def create_staff(self, new: NewStaff) -> None:
        self.check_places(new.service_point_id, new.partner_base_id)
        self.audited("staff.create", new.username, new.role, lambda s: self._staff(s).create(new))

    def disable_staff(self, username: str, *, me: str) -> None:
        if username == me:
            raise Conflict("an administrator cannot disable their own account", reason="own_account")
        self.audited("staff.disable", username, "disabled", lambda s: self._staff(s).disable(username))

    def unlock_staff(self, username: str) -> None:
        self.audited("staff.unlock", username, "unlocked", lambda s: self._staff(s).unlock(username))

    # --- reference data ---------------------------------------------------------------------

    def check_places(self, point: str | None, base: str | None) -> None:
        """A binding names an existing service point / partner base (or none)."""
        if point and point not in {p.code for p in self.points()}:
            raise InvalidRecord(f"no service point {point}", field="service_point",
                                reason="unknown_service_point", value=point)
        if base and base not in {b.code for b in self.bases()}:
            raise InvalidRecord(f"no partner base {base}", field="partner_base",
                                reason="unknown_partner_base", value=base)

    def points(self) -> list[ServicePoint]:
        return self.db.read(lambda s: list(s.scalars(select(ServicePoint).order_by(col(ServicePoint.code)))))

    def items(self) -> list[ServiceItem]:
        return self.db.read(repo.list_service_items)

    def bases(self) -> list[PartnerBase]:
        return self.db.read(lambda s: list(s.scalars(select(PartnerBase).order_by(col(PartnerBase.code)))))

    def programmes(self) -> list[Programme]:
        return self.db.read(lambda s: list(s.scalars(select(Programme).order_by(col(Programme.code)))))

    def categories(self) -> list[tuple[str, str]]:
        rows = self.db.read(lambda s: list(s.scalars(select(Category).order_by(col(Category.id)))))
        return [(c.code, c.label) for c in rows]

    def save_point(self, point: ServicePoint) -> None:
        self.audited("point.save", point.code, "saved", lambda s: repo.save_all(s, objects=[point]))

    def save_item(self, item: ServiceItem) -> None:
        self.audited("item.save", item.code, "saved", lambda s: repo.save_all(s, objects=[item]))

    def save_base(self, base: PartnerBase) -> None:
        self.audited("base.save", base.code, "saved", lambda s: repo.save_all(s, objects=[base]))

    def save_programme(self, spec: ProgrammeSpec) -> None:
        if spec.ends_on < spec.starts_on:
            raise InvalidRecord("the programme ends before it starts", field="ends_on",
                                reason="ends_before_start")
        if spec.quota < 0:
            raise InvalidRecord("the quota cannot be negative", field="quota", reason="negative")
        self.check_places(None, spec.base_code)
        known = {code for code, _ in self.categories()}
        unknown = sorted(set(spec.categories) - known)
        if unknown:
            raise InvalidRecord(f"unknown categories: {', '.join(unknown)}", field="categories",
                                reason="unknown_category", value=", ".join(unknown))
        self.audited("programme.save", spec.code, "saved", lambda s: _save_programme(s, spec))

    # --- consents and erasure ---------------------------------------------------------------

    def _registry(self, session: Session) -> RegistryService:
        """The registry's services in ``session``'s open transaction (they commit with its audit row)."""
        return RegistryService(requests.joined(session), cipher_from_store(self.web.key_store),
                               clock=self.services.clock)

    def consents(self) -> list[ConsentRow]:
        query = (select(Consent, col(Member.public_id)).join(Member, col(Member.id) == col(Consent.member_id))
                 .order_by(col(Consent.withdrawn_at).is_not(None), col(Consent.granted_at).desc()).limit(500))
        rows = self.db.read(lambda s: list(s.execute(query)))
        return [ConsentRow(int(c.id or 0), str(pid), c.partner, c.purpose, c.granted_at, c.withdrawn_at)
                for c, pid in rows]

    def withdraw_consent(self, public_id: str, partner: str) -> int:
        return self.audited("consent.withdraw", public_id, "withdrawn",
                            lambda s: self._registry(s).withdraw_consent(public_id, partner=partner))

    def erasures(self) -> list[tuple[str, dt.datetime]]:
        query = (select(col(Member.public_id), col(MemberEvent.at))
                 .join(Member, col(Member.id) == col(MemberEvent.member_id))
                 .where(col(MemberEvent.action) == "erased")
                 .order_by(col(MemberEvent.at).desc()).limit(200))
        return [(str(pid), at) for pid, at in self.db.read(lambda s: list(s.execute(query)))]

    def erase(self, public_id: str) -> None:
        self.audited("member.erase", public_id, "erased", lambda s: self._registry(s).erase(public_id))

    # --- privacy requests -------------------------------------------------------------------

    def privacy_requests(self) -> tuple[list[PrivacyRequest], list[PrivacyRequest]]:
        """The pending requests (oldest first) and the latest answered ones."""
        return self.db.read(lambda s: (requests.pending(s), requests.recent_answers(s)))

    def file_request(self, kind: RequestKind, public_id: str, partner: str | None) -> int:
        def change(session: Session) -> int:  # the audit row names the id: one transaction, no audited()
            registry_repo.get_member(session, public_id=public_id)  # NotFound: nothing filed
            made = requests.file_request(session, kind=kind, member=public_id, partner=partner,
                                         actor=self.actor, at=self.services.clock())
            request_id = int(made.id or 0)
            append_event(session, self._event("privacy_request.file", str(request_id), kind.value))
            return request_id

        with database_errors():
            return self.db.transact(change)

    def answer_request(self, request_id: int, status: RequestStatus, note: str) -> None:
        """Mark the request answered; ``done`` also withdraws or erases, in the same transaction."""
        if status is RequestStatus.pending:
            raise InvalidRecord("an answer is done or refused", field="status", reason="not_an_answer")

        def change(session: Session) -> None:
            request = requests.open_request(session, request_id)
            requests.answer(request, status=status, actor=self.actor, at=self.services.clock(), note=note)
            if status is RequestStatus.done:
                self._carry_out(session, request)
            event = self._event("privacy_request." + status.value, str(request_id), request.kind)
            append_event(session, event)

        with database_errors():
            self.db.transact(change)

    def _carry_out(self, session: Session, request: PrivacyRequest) -> None:
        registry = self._registry(session)
        if request.kind == RequestKind.erasure.value:
            registry.erase(request.member_public_id)
        else:
            registry.withdraw_consent(request.member_public_id, partner=str(request.partner_code))

    # --- the audit chain ----------------------------------------------------------------------

    def audit_status(self) -> AuditStatus:
        rows = self.db.read(read_audit)
        head = checkpoint(rows)
        try:
            verify_chain(rows)
        except AuditIntegrityError as exc:
            last_good = rows[exc.index - 1].seq if exc.index > 0 else None
            return AuditStatus(False, len(rows), last_good, rows[exc.index].seq, exc.message, "")
        last = rows[-1].seq if rows else None
        return AuditStatus(True, len(rows), last, None, "", head.tree_head.hex())


def _save_programme(session: Session, spec: ProgrammeSpec) -> None:
    seed_programme(session, code=spec.code, base_code=spec.base_code, name=spec.name,
                   starts_on=spec.starts_on, ends_on=spec.ends_on, quota=spec.quota,
                   categories=spec.categories, named_list=bool(spec.named))
    if spec.named:
        if len(spec.named) > MAX_NAMED:
            raise InvalidRecord(f"at most {MAX_NAMED} members on a named list", field="named",
                                reason="too_many_members")
        members = [_member(session, pid) for pid in spec.named]
        rows = [ProgrammeMember(programme_code=spec.code, member_id=int(m.id or 0)) for m in members]
        repo.save_all(session, objects=rows)


def _member(session: Session, public_id: str) -> Member:
    try:
        return registry_repo.get_member(session, public_id=public_id)
    except NotFound:
        raise InvalidRecord(f"no member {public_id} for the named list", field="named",
                            reason="unknown_member", value=public_id) from None
