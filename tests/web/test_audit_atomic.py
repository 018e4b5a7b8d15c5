"""Every admin action commits its change and its audit row in one transaction: when the audit row
cannot be appended, the change is not there either (and the other way round, both are there).

Drives :class:`cardsvc.web.admin.AdminDesk` (what the admin pages run) over the in-process site, with
the audit append made to fail; ``cardsvc clients`` likewise through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import Session, col

from cardsvc.cli import clients as clients_module
from cardsvc.registry.models import Consent, Member, MemberStatus
from cardsvc.registry.privacy_models import PrivacyRequest, RequestKind, RequestStatus
from cardsvc.registry.staff import NewStaff
from cardsvc.registry.staff_models import StaffUser
from cardsvc.registry.verification_models import ApiClient, AuditLogRow, ServicePoint
from cardsvc.verification.roles import Role
from cardsvc.web import admin as admin_module
from cardsvc.web.admin import AdminDesk
from tests.support.browser import STAFF_PASSWORD
from tests.support.cli import Cli, in_process_cli
from tests.web.support import Site
from tests.web.test_privacy_requests import BASE, member_row, new_member, registry, requests_of

ACTOR = "web:atomic-test"


class AuditDown(Exception):
    """The audit append failing (disk full, lost connection...) in the middle of the transaction."""


@pytest.fixture
def desk(site: Site) -> AdminDesk:
    pages = site.app.pages
    return AdminDesk(pages.state.web, pages.state.services, ACTOR)


@pytest.fixture
def audit_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    def broken(*_args: Any, **_kw: Any) -> None:
        raise AuditDown

    yield lambda: monkeypatch.setattr(admin_module, "append_event", broken)


def rows_of(site: Site, event_type: str) -> list[AuditLogRow]:
    with Session(site.engine) as session:
        query = select(AuditLogRow).where(col(AuditLogRow.event_type) == event_type)
        return list(session.scalars(query.order_by(col(AuditLogRow.seq))))


def subjects(site: Site, event_type: str) -> list[str]:
    return [r.subject for r in rows_of(site, event_type)]


def staff_row(site: Site, username: str) -> StaffUser | None:
    with Session(site.engine) as session:
        return session.scalars(select(StaffUser).where(col(StaffUser.username) == username)).one_or_none()


def client_labels(site: Site) -> list[str]:
    with Session(site.engine) as session:
        return [c.label for c in session.scalars(select(ApiClient))]


def new_staff(username: str) -> NewStaff:
    return NewStaff(username=username, display_name="原子测试", role=Role.clerk.value,
                    password=STAFF_PASSWORD)


def test_a_client_is_not_created_without_its_audit_row(site: Site, desk: AdminDesk,
                                                       audit_down: Callable[[], None]) -> None:
    audit_down()
    with pytest.raises(AuditDown):
        site.run(desk.create_client(label="atomic desk", role=Role.clerk, point=None, base=None))
    assert "atomic desk" not in client_labels(site)
    known = {c.client_id for c in site.run(desk.clients())}
    assert {r.subject for r in rows_of(site, "client.create")} <= known  # no row for a client not there


def test_a_client_is_not_revoked_without_its_audit_row(site: Site, desk: AdminDesk,
                                                       audit_down: Callable[[], None]) -> None:
    issued = site.run(desk.create_client(label="to keep", role=Role.clerk, point=None, base=None))
    assert issued.client.client_id in subjects(site, "client.create")
    audit_down()
    with pytest.raises(AuditDown):
        site.run(desk.revoke_client(issued.client.client_id))
    with Session(site.engine) as session:
        query = select(ApiClient).where(col(ApiClient.client_id) == issued.client.client_id)
        row = session.scalars(query).one()
    assert row.revoked is False
    assert issued.client.client_id not in subjects(site, "client.revoke")


def test_staff_changes_are_not_made_without_their_audit_rows(site: Site, desk: AdminDesk,
                                                             audit_down: Callable[[], None]) -> None:
    desk.create_staff(new_staff("atomic1"))
    assert subjects(site, "staff.create").count("atomic1") == 1
    with Session(site.engine) as session, session.begin():
        session.execute(update(StaffUser).where(col(StaffUser.username) == "atomic1").values(failed_logins=5))
    audit_down()
    with pytest.raises(AuditDown):
        desk.create_staff(new_staff("atomic2"))
    with pytest.raises(AuditDown):
        desk.disable_staff("atomic1", me="admin")
    with pytest.raises(AuditDown):
        desk.unlock_staff("atomic1")
    assert staff_row(site, "atomic2") is None
    kept = staff_row(site, "atomic1")
    assert kept is not None and kept.disabled is False and kept.failed_logins == 5
    assert "atomic1" not in subjects(site, "staff.disable") + subjects(site, "staff.unlock")
    assert "atomic2" not in subjects(site, "staff.create")


def test_reference_data_is_not_saved_without_its_audit_row(site: Site, desk: AdminDesk,
                                                           audit_down: Callable[[], None]) -> None:
    audit_down()
    with pytest.raises(AuditDown):
        desk.save_point(ServicePoint(code="sp-atomic", name="原子站", org_code="X01"))
    assert "sp-atomic" not in {p.code for p in desk.points()}
    assert "sp-atomic" not in subjects(site, "point.save")


def test_consent_and_erasure_are_not_done_without_their_audit_rows(site: Site, desk: AdminDesk,
                                                                   audit_down: Callable[[], None]) -> None:
    member = new_member(site, "11010519491231003X")
    registry(site).record_consent(member, partner=BASE, purpose="recuperation")
    audit_down()
    with pytest.raises(AuditDown):
        desk.withdraw_consent(member, BASE)
    with pytest.raises(AuditDown):
        desk.erase(member)
    with Session(site.engine) as session:
        consents = list(session.scalars(select(Consent).join(Member).where(col(Member.public_id) == member)))
    assert consents and all(c.withdrawn_at is None for c in consents)
    kept = member_row(site, member)
    assert kept.status == MemberStatus.active and kept.id_sealed is not None
    assert member not in subjects(site, "consent.withdraw") + subjects(site, "member.erase")


def test_privacy_requests_are_not_filed_or_answered_without_their_audit_rows(
        site: Site, desk: AdminDesk, audit_down: Callable[[], None]) -> None:
    member = new_member(site, "110101199003075000")
    request_id = desk.file_request(RequestKind.erasure, member, None)
    filed = len(rows_of(site, "privacy_request.file"))
    assert subjects(site, "privacy_request.file")[-1] == str(request_id)
    other = new_member(site, "110101199003076000")
    audit_down()
    with pytest.raises(AuditDown):
        desk.file_request(RequestKind.erasure, other, None)
    with pytest.raises(AuditDown):
        desk.answer_request(request_id, RequestStatus.done, "")
    assert requests_of(site, other) == []
    [pending] = requests_of(site, member)
    assert isinstance(pending, PrivacyRequest) and pending.status == RequestStatus.pending.value
    assert member_row(site, member).status == MemberStatus.active
    assert str(request_id) not in subjects(site, "privacy_request.done")
    assert len(rows_of(site, "privacy_request.file")) == filed


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    invoke = in_process_cli(tmp_path, monkeypatch, capsys)
    assert invoke("init")[0] == 0
    return invoke


def test_cli_clients_change_and_audit_row_commit_together(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = cli("clients", "create", "--label", "kept", "--role", "clerk", "--json")
    assert code == 0
    kept = json.loads(out)["client_id"]

    def broken(*_args: Any, **_kw: Any) -> None:
        raise AuditDown

    original = clients_module.append_event
    monkeypatch.setattr(clients_module, "append_event", broken)
    with pytest.raises(AuditDown):
        cli("clients", "create", "--label", "lost", "--role", "clerk")
    with pytest.raises(AuditDown):
        cli("clients", "revoke", kept)
    monkeypatch.setattr(clients_module, "append_event", original)
    with ThreadPoolExecutor(1) as worker:  # `clients list` runs asyncio.run: not on the browser's loop
        listed = json.loads(worker.submit(cli, "clients", "list", "--json").result()[1])
    assert [(c["label"], c["revoked"]) for c in listed] == [("kept", False)]
