"""Issuance desk pages: import a member list, batches with live progress per reader, card lookup,
lifecycle changes with a confirmation step, and the print sheet PDF (issue #6 item 3).

Every POST carries a one-time form nonce: a second submission of the same form shows the result of
the first (``StaffAccounts.once``) and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from cardsvc.errors import ImportFileError
from cardsvc.web.context import web_of
from cardsvc.web.desk import ACTIONS, MEMBER_LIST_SUFFIXES, Desk
from cardsvc.web.forms import submit_once
from cardsvc.web.problems import page_problem
from cardsvc.web.render import render, secured
from cardsvc.web.session import user_of

router = APIRouter(prefix="/desk")
MAX_UPLOAD = 8 * 1024 * 1024
NonceField = Annotated[str, Form(max_length=64)]


def _desk(request: Request) -> Desk:
    return Desk(web_of(request))


# --- member lists ---------------------------------------------------------------------------------


@router.get("/import", name="desk_import_form")
def import_form(request: Request) -> Response:
    return render(request, "desk/import.html", orgs=_desk(request).organisations(), problem=None)


@router.post("/import", name="desk_import_submit")
def import_submit(request: Request, file: Annotated[UploadFile, File()], nonce: NonceField,
                  org: Annotated[str, Form(max_length=32)] = "",
                  check_only: Annotated[bool, Form()] = False) -> Response:
    desk = _desk(request)
    name = Path(file.filename or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in MEMBER_LIST_SUFFIXES:
        return _import_refused(request, desk, "desk.import.not_a_list")
    upload = desk.upload_path(suffix)
    upload.write_bytes(file.file.read(MAX_UPLOAD + 1)[:MAX_UPLOAD])

    def work() -> str:
        report_id = desk.import_members(upload, source=name, org_code=org or None, dry_run=check_only)
        return str(request.url_for("desk_import_report", report_id=report_id).path)

    try:
        return submit_once(request, nonce, work)
    except ImportFileError as exc:
        return _import_refused(request, desk, *_import_problem(exc))
    finally:
        upload.unlink(missing_ok=True)


def _import_refused(request: Request, desk: Desk, key: str, detail: str = "") -> Response:
    return render(request, "desk/import.html", status=422, orgs=desk.organisations(),
                  problem=key, detail=detail)


def _import_problem(exc: ImportFileError) -> tuple[str, str]:
    """(catalog key, detail) for a refused list: the specific reason (with the columns it names, as
    every page shows them), never the English message."""
    key, values = page_problem(exc)
    specific = key.startswith("problem.import_file.")
    return (key if specific else "desk.import.unreadable"), str(values.get("detail", ""))


@router.get("/import/reports/{report_id}", name="desk_import_report")
def import_report(request: Request, report_id: str, download: str = "") -> Response:
    summary, xlsx = _desk(request).report(report_id)
    if download == "xlsx":
        filename = f"import-report-{report_id[:8]}.xlsx"
        return secured(FileResponse(xlsx, filename=filename, media_type=(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))
    return render(request, "desk/report.html", report=summary, shown=summary.problems[:200])


# --- batches --------------------------------------------------------------------------------------


@router.get("/batches", name="desk_batches")
def batches(request: Request, created: str = "") -> Response:
    desk = _desk(request)
    return render(request, "desk/batches.html", batches=desk.batches(), orgs=desk.organisations(),
                  profiles=desk.profiles(), created=created[:64])


@router.post("/batches", name="desk_batch_create")
def batch_create(request: Request, nonce: NonceField,
                 label: Annotated[str, Form(min_length=1, max_length=64)],
                 profile: Annotated[str, Form(max_length=64)], org: Annotated[str, Form(max_length=32)] = "",
                 valid_days: Annotated[int, Form(ge=1, le=3650)] = 3 * 365) -> Response:
    desk = _desk(request)

    def work() -> str:
        desk.create_batch(label=label.strip(), profile=profile, org_code=org or None, valid_days=valid_days)
        return str(request.url_for("desk_batches").path) + f"?created={quote(label.strip())}"

    return submit_once(request, nonce, work)


@router.get("/batches/{label}/progress", name="desk_progress")
def progress(request: Request, label: str) -> JSONResponse:
    return JSONResponse(_desk(request).progress(label), headers={"Cache-Control": "no-store"})


@router.get("/batches/{label}/sheet.pdf", name="desk_print")
def print_sheet(request: Request, label: str) -> Response:
    pdf = _desk(request).print_sheet(label)
    disposition = f"attachment; filename=\"sheet.pdf\"; filename*=UTF-8''{quote(label)}.pdf"
    return secured(Response(pdf, media_type="application/pdf",
                            headers={"Content-Disposition": disposition}))


# --- cards ----------------------------------------------------------------------------------------


@router.get("/cards", name="desk_cards")
def cards(request: Request, q: str = "") -> Response:
    rows = _desk(request).lookup(q[:64]) if q.strip() else []
    return render(request, "desk/cards.html", q=q[:64], rows=rows, searched=bool(q.strip()))


@router.get("/cards/{number}", name="desk_card")
def card(request: Request, number: str, done: str = "") -> Response:
    row, view = _desk(request).card(number)
    return render(request, "desk/card.html", row=row, view=view, actions=ACTIONS,
                  request_done=done if done in ACTIONS else None)


@router.get("/cards/{number}/{action}", name="desk_card_confirm")
def card_confirm(request: Request, number: str, action: str) -> Response:
    if action not in ACTIONS:
        return secured(RedirectResponse(str(request.url_for("desk_card", number=number).path), 303))
    row, _view = _desk(request).card(number)
    return render(request, "desk/confirm.html", row=row, action=action)


@router.post("/cards/{number}/{action}", name="desk_card_action")
def card_action(request: Request, number: str, action: str, nonce: NonceField,
                reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    desk = _desk(request)
    actor = f"web:{user_of(request).staff.username}"

    def work() -> str:
        change = desk.change(number, action, actor=actor, reason=reason.strip())
        shown = change.new_card_number if action == "replace" and change.new_card_number else number
        return str(request.url_for("desk_card", number=shown).path) + f"?done={action}"

    return submit_once(request, nonce, work)

