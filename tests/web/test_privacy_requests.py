"""Members' privacy requests on the admin privacy page (PIPL): file, list with a due date, answer.

In process (httpx on the composed app, like tests/web/test_admin_pages.py's non-browser tests).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, select, update
from sqlmodel import Session, SQLModel, col

from cardsvc.credential.keystore import open_key_store
from cardsvc.registry.db import current_revision, head_revision, session_factory
from cardsvc.registry.identity import check_character
from cardsvc.registry.keys import cipher_from_store
from cardsvc.registry.models import Consent, Member, MemberCreate, MemberStatus
from cardsvc.registry.privacy_models import PrivacyRequest
from cardsvc.registry.services import RegistryService
from cardsvc.registry.verification_models import AuditLogRow
from cardsvc.verification.roles import Role
from tests.web.support import Site, csrf_in

_NONCE = re.compile(r'name="nonce" value="([^"]+)"')
BASE = "base-beidaihe"


@pytest.fixture(scope="module")
def admin(site: Site) -> Iterator[Site]:
    site.client = site.fresh_client()
    assert site.login(Role.admin).status_code == 303
    yield site


def registry(site: Site) -> RegistryService:
    settings = site.app.pages.state.web.settings
    return RegistryService(session_factory(site.engine), cipher_from_store(open_key_store(settings)))


def new_member(site: Site, id_number: str) -> str:
    """A new member; ``id_number`` is the 17 leading digits (the check character is computed)."""
    full = id_number[:17] + check_character(id_number[:17])
    made = registry(site).create_member(MemberCreate(name="王请求", id_number=full, org_code="G1"))
    return made.public_id


def member_row(site: Site, public_id: str) -> Member:
    with Session(site.engine) as session:
        return session.scalars(select(Member).where(col(Member.public_id) == public_id)).one()


def requests_of(site: Site, public_id: str) -> list[PrivacyRequest]:
    with Session(site.engine) as session:
        query = select(PrivacyRequest).where(col(PrivacyRequest.member_public_id) == public_id)
        return list(session.scalars(query.order_by(col(PrivacyRequest.id))))


def guard(site: Site, path: str, form_id: str) -> dict[str, str]:
    html = site.get(path).text
    nonce = _NONCE.search(html, html.index(f'id="{form_id}"'))
    assert nonce, f"no nonce in {form_id}"
    return {"csrf": csrf_in(html), "nonce": nonce.group(1)}


def file(site: Site, member: str, kind: str, partner: str = "") -> PrivacyRequest:
    data = {**guard(site, "/admin/privacy", "request-form"), "member": member, "kind": kind,
            "partner": partner}
    answer = site.post("/admin/privacy/requests", data=data)
    assert answer.status_code == 303, answer.text
    return requests_of(site, member)[-1]


def answer(site: Site, request_id: int, status: str, note: str = "") -> dict[str, str]:
    """Ask for the confirmation page, then submit it; returns the submitted form (to submit again)."""
    asked = site.post("/admin/privacy/requests/confirm",
                      data={"csrf": site.csrf("/admin/privacy"), "request_id": str(request_id),
                            "status": status, "note": note})
    assert asked.status_code == 200 and f"#{request_id}" in asked.text
    nonce = _NONCE.search(asked.text)
    assert nonce
    data = {"csrf": csrf_in(asked.text), "nonce": nonce.group(1), "request_id": str(request_id),
            "status": status, "note": note}
    done = site.post("/admin/privacy/requests/answer", data=data)
    assert done.status_code == 303, done.text
    return data


def audit(site: Site, event_type: str) -> list[AuditLogRow]:
    with Session(site.engine) as session:
        return list(session.scalars(select(AuditLogRow).where(col(AuditLogRow.event_type) == event_type)))


def test_an_erasure_request_is_filed_listed_and_done(admin: Site) -> None:
    member = new_member(admin, "11010519491231002X")
    request = file(admin, member, "erasure")
    filed = audit(admin, "privacy_request.file")[-1]
    assert (request.status, request.received_by, filed.subject) == ("pending", filed.actor, str(request.id))
    page = admin.get("/admin/privacy").text
    assert f'data-request="{request.id}" data-overdue="false"' in page
    assert (request.received_at + dt.timedelta(days=15)).strftime("%Y-%m-%d") in page
    answer(admin, int(request.id or 0), "done")
    erased = member_row(admin, member)
    assert erased.status == MemberStatus.erased and erased.name == ""
    assert erased.id_sealed is None and erased.phone_sealed is None and erased.id_index is None
    [kept] = requests_of(admin, member)
    assert kept.status == "done" and kept.handled_at is not None and kept.handled_by is not None
    rows = audit(admin, "privacy_request.done")
    assert rows[-1].subject == str(request.id) and rows[-1].actor.startswith("web:")
    assert member not in rows[-1].subject + rows[-1].reason
    assert f'data-request="{request.id}" data-status="done"' in admin.get("/admin/privacy").text


def test_a_consent_withdrawal_request_done_withdraws_the_consent(admin: Site) -> None:
    member = new_member(admin, "360426199101010071")
    registry(admin).record_consent(member, partner=BASE, purpose="recuperation")
    request = file(admin, member, "consent_withdrawal", BASE)
    assert request.partner_code == BASE
    answer(admin, int(request.id or 0), "done")
    with Session(admin.engine) as session:
        consents = list(session.scalars(select(Consent).join(Member).where(col(Member.public_id) == member)))
    assert consents and all(c.withdrawn_at is not None for c in consents)
    assert member_row(admin, member).status == MemberStatus.active


def test_a_refused_request_keeps_the_member_and_a_second_submit_does_nothing(admin: Site) -> None:
    member = new_member(admin, "110101199003074477")
    request = file(admin, member, "erasure")
    before = len(audit(admin, "privacy_request.refused"))
    form = answer(admin, int(request.id or 0), "refused", "duplicate of an earlier request")
    again = admin.post("/admin/privacy/requests/answer", data=form)
    assert again.status_code == 303
    assert len(audit(admin, "privacy_request.refused")) == before + 1
    kept = member_row(admin, member)
    assert kept.status == MemberStatus.active and kept.name == "王请求" and kept.id_sealed is not None
    [refused] = requests_of(admin, member)
    assert refused.status == "refused" and refused.note == "duplicate of an earlier request"


def test_filing_twice_with_one_form_files_once(admin: Site) -> None:
    member = new_member(admin, "110101198001010053")
    data = {**guard(admin, "/admin/privacy", "request-form"), "member": member, "kind": "erasure",
            "partner": ""}
    assert admin.post("/admin/privacy/requests", data=data).status_code == 303
    assert admin.post("/admin/privacy/requests", data=data).status_code == 303
    assert len(requests_of(admin, member)) == 1


def test_an_answered_request_cannot_be_answered_again(admin: Site) -> None:
    member = new_member(admin, "11010119850315001X")
    request = file(admin, member, "erasure")
    answer(admin, int(request.id or 0), "refused")
    asked = admin.post("/admin/privacy/requests/confirm",
                       data={"csrf": admin.csrf("/admin/privacy"), "request_id": str(request.id),
                             "status": "done"})
    nonce = _NONCE.search(asked.text)
    assert nonce
    late = admin.post("/admin/privacy/requests/answer",
                      data={"csrf": csrf_in(asked.text), "nonce": nonce.group(1),
                            "request_id": str(request.id), "status": "done", "note": ""})
    assert late.status_code == 409
    assert member_row(admin, member).status == MemberStatus.active
    assert requests_of(admin, member)[0].status == "refused"


def test_an_overdue_request_is_shown_red(admin: Site) -> None:
    member = new_member(admin, "110101197001010030")
    request = file(admin, member, "erasure")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    with Session(admin.engine) as session, session.begin():
        session.execute(update(PrivacyRequest).where(col(PrivacyRequest.id) == request.id)
                        .values(received_at=old))
    page = admin.get("/admin/privacy").text
    row = page[page.index(f'data-request="{request.id}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-overdue="true"' in row and 'class="error overdue"' in row and "已超期" in row
    assert "<td>20</td>" in row


def test_an_unknown_member_files_nothing(admin: Site) -> None:
    data = {**guard(admin, "/admin/privacy", "request-form"), "member": "NOSUCHMEMBER", "kind": "erasure"}
    assert admin.post("/admin/privacy/requests", data=data).status_code == 404
    assert requests_of(admin, "NOSUCHMEMBER") == []


@pytest.mark.parametrize("role", [Role.clerk, Role.service_point, Role.partner], ids=lambda r: r.value)
def test_non_admins_are_refused(site: Site, role: Role) -> None:
    client = site.fresh_client()
    site.client, original = client, site.client
    try:
        assert site.login(role).status_code == 303
        csrf = site.csrf("/")
        for path in ("/admin/privacy/requests", "/admin/privacy/requests/confirm",
                     "/admin/privacy/requests/answer"):
            refused = site.post(path, data={"csrf": csrf, "member": "ABCD1234", "kind": "erasure",
                                            "request_id": "1", "status": "done", "nonce": "x"})
            assert refused.status_code == 403, path
    finally:
        site.run(client.aclose())
        site.client = original


def _diffs(site: Site, metadata: MetaData) -> list[str]:
    with site.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    return [str(d) for d in diffs if "privacy_request" in str(d)]


def test_migration_0005_matches_the_model(site: Site) -> None:
    assert head_revision() == "0005_privacy_requests" == current_revision(site.engine)
    ours = MetaData()
    SQLModel.metadata.tables[PrivacyRequest.__tablename__].to_metadata(ours)
    assert _diffs(site, ours) == []
    ours.tables["privacy_request"].append_column(Column("drift", Integer()))
    assert any("drift" in d for d in _diffs(site, ours))  # the comparison does see a difference


def test_a_failed_erasure_leaves_the_request_pending(admin: Site) -> None:
    member = new_member(admin, "110101196505050012")
    request = file(admin, member, "erasure")
    registry(admin).erase(member)  # erased meanwhile by the direct form: the queued erasure now fails
    asked = admin.post("/admin/privacy/requests/confirm",
                       data={"csrf": admin.csrf("/admin/privacy"), "request_id": str(request.id),
                             "status": "done"})
    nonce = _NONCE.search(asked.text)
    assert nonce
    failed = admin.post("/admin/privacy/requests/answer",
                        data={"csrf": csrf_in(asked.text), "nonce": nonce.group(1),
                              "request_id": str(request.id), "status": "done", "note": ""})
    assert failed.status_code == 409
    [still] = requests_of(admin, member)
    assert still.status == "pending" and still.handled_at is None  # rolled back with the erasure
