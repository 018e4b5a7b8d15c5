"""Local days on the pages' desks: "today" starts at local midnight, months are local months.

The desks are driven directly on a migrated SQLite world (the browser suites cover the pages). At
00:30 on 1 December in Shanghai (2026-11-30T16:30Z), "today" holds what happened since 16:00Z and
not what happened at 23:50 local the evening before; with ``UTC`` the old UTC day stays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cardsvc.registry import card_repo
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import ClientRecord
from cardsvc.web.admin_stats import dashboard
from cardsvc.web.partner import BaseDesk
from cardsvc.web.service_point import PointDesk
from tests.verification.world import PROGRAMME, World, make_world, sqlite_url

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENING_BEFORE = dt.datetime(2026, 11, 30, 15, 50, tzinfo=dt.UTC)  # 23:50 on 30 Nov in Shanghai
JUST_AFTER_MIDNIGHT = dt.datetime(2026, 11, 30, 16, 10, tzinfo=dt.UTC)  # 00:10 on 1 Dec in Shanghai
HALF_PAST_MIDNIGHT = dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC)  # 00:30 on 1 Dec in Shanghai
CREATED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made


def point_desk(world: World, tz: dt.tzinfo) -> PointDesk:
    client = ClientRecord(client_id="web:sp-local", label="page user", role=Role.service_point,
                          token_hash=bytes(32), created_at=CREATED, service_point_id="sp-xicheng-01")
    return PointDesk(world.svc, client, tz=tz)


def base_desk(world: World, tz: dt.tzinfo) -> BaseDesk:
    client = ClientRecord(client_id="web:pb-local", label="page user", role=Role.partner,
                          token_hash=bytes(32), created_at=CREATED, partner_base_id="base-beidaihe")
    return BaseDesk(world.svc, client, tz=tz)


def serve_at(world: World, desk: PointDesk, at: dt.datetime) -> str:
    """Tap a new card at ``at`` and record a consultation for it; the card number."""
    world.clock.now = at
    card = world.issue_card()
    desk.verify(card.qr)
    desk.record(card_number=card.card_number, item="legal_consultation", via=desk.client.client_id,
                key=f"local-{at:%H%M}")
    return card.card_number


def stay_at(world: World, desk: BaseDesk, at: dt.datetime) -> int:
    """A guest checked in at ``at`` and out ten minutes later; the check-in id."""
    world.clock.now = at
    card = world.issue_card()
    checkin_id = desk.check_in(PROGRAMME, card.qr, f"stay-{at:%H%M}").checkin_id
    world.clock.now = at + dt.timedelta(minutes=10)
    desk.check_out(checkin_id)
    return checkin_id


@pytest.mark.parametrize(("tz", "shown"), [(SHANGHAI, ["late"]), (dt.UTC, ["late", "early"])])
def test_todays_records_at_half_past_midnight(world: World, tz: dt.tzinfo, shown: list[str]) -> None:
    desk = point_desk(world, tz)
    cards = {"early": serve_at(world, desk, EVENING_BEFORE),
             "late": serve_at(world, desk, JUST_AFTER_MIDNIGHT)}
    world.clock.now = HALF_PAST_MIDNIGHT
    assert [row.card_number for row in desk.today()] == [cards[name] for name in shown]


@pytest.mark.parametrize(("tz", "month", "months"), [(SHANGHAI, "2026-12", ["2026-11", "2026-12"]),
                                                      (dt.UTC, "2026-11", ["2026-11"])])
def test_this_month_and_monthly_chart_are_local(world: World, tz: dt.tzinfo, month: str,
                                                months: list[str]) -> None:
    desk = point_desk(world, tz)
    serve_at(world, desk, EVENING_BEFORE)
    serve_at(world, desk, JUST_AFTER_MIDNIGHT)
    world.clock.now = HALF_PAST_MIDNIGHT
    assert desk.this_month() == month
    assert [bar.label for bar in desk.months()] == months
    assert sum(bar.count for bar in desk.month_items(month)) == (1 if tz is SHANGHAI else 2)


@pytest.mark.parametrize(("tz", "shown"), [(SHANGHAI, ["late"]), (dt.UTC, ["late", "early"])])
def test_partner_guests_today_at_half_past_midnight(world: World, tz: dt.tzinfo, shown: list[str]) -> None:
    world.programme()
    desk = base_desk(world, tz)
    stays = {"early": stay_at(world, desk, EVENING_BEFORE),
             "late": stay_at(world, desk, JUST_AFTER_MIDNIGHT)}
    world.clock.now = HALF_PAST_MIDNIGHT
    assert [guest.checkin_id for guest in desk.guests()] == [stays[name] for name in shown]


@pytest.mark.parametrize(("tz", "month"), [(SHANGHAI, "2026-12"), (dt.UTC, "2026-11")])
def test_cards_issued_per_local_month(world: World, tz: dt.tzinfo, month: str) -> None:
    card = world.issue_card()
    with world.session() as s:
        row = card_repo.get_card(s, card_number=card.card_number)
        row.issued_at = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # 07:30 on 1 Dec in Shanghai
        s.add(row)
        s.commit()
    bars = dashboard(world.db, tz).cards_per_month
    assert [(bar.key, bar.count) for bar in bars] == [(month, 1)]


LATE_EVENING_UTC = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # 07:30 on 1 Dec in Shanghai


@pytest.mark.parametrize(("tz", "day"), [(SHANGHAI, "2026-12-01"), (dt.UTC, "2026-11-30")])
def test_recent_services_are_dated_by_the_local_day(world: World, tz: dt.tzinfo, day: str) -> None:
    desk = point_desk(world, tz)
    card_number = serve_at(world, desk, LATE_EVENING_UTC)
    shown = desk.shown(card_number)
    assert shown is not None
    assert [s["date"] for s in shown.view["recent_services"]] == [day]
