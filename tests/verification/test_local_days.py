"""Local days (``CARDSVC_TIMEZONE``): a service's month is the local month of its UTC instant.

A service at 2026-11-30T23:30Z is 07:30 on 1 December in Shanghai: it counts in December. With
``UTC`` the old behaviour (the UTC month) stays. An unknown zone is a ConfigError naming the variable.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from cardsvc.config import get_settings
from cardsvc.errors import ConfigError
from cardsvc.localtime import day_start, local_date, local_month
from cardsvc.verification.points import ServiceRequest, StatRow, record_service, statistics
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import ClientRecord
from tests.verification.world import World

SHANGHAI = ZoneInfo("Asia/Shanghai")
LATE_NOVEMBER_UTC = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # 2026-12-01 07:30 in Shanghai
POINT, ITEM = "sp-xicheng-01", "legal_consultation"


def point_client() -> ClientRecord:
    return ClientRecord(client_id="sp-local-day", label="local days", role=Role.service_point,
                        token_hash=bytes(32), created_at=LATE_NOVEMBER_UTC - dt.timedelta(days=1),
                        service_point_id=POINT)


def record_at(world: World, at: dt.datetime, tz: dt.tzinfo) -> tuple[str, list[StatRow], list[StatRow]]:
    """Tap and record one service at ``at``; the record's month and the stats of Nov and Dec 2026."""
    world.clock.now = at
    client, card = point_client(), world.issue_card()
    with world.session() as s:
        world.svc.verify_qr(s, actor=client.client_id, qr_text=card.qr)
        record, replayed = record_service(s, client, ServiceRequest(ITEM, card.card_number), world.clock(),
                                          tz=tz)
        s.commit()
        assert not replayed and record.recorded_at == at
        november = statistics(s, client, point=None, month="2026-11")
        december = statistics(s, client, point=None, month="2026-12")
    return record.month, november, december


def test_service_at_2330z_on_30_november_counts_in_december_in_shanghai(world: World) -> None:
    month, november, december = record_at(world, LATE_NOVEMBER_UTC, SHANGHAI)
    assert month == "2026-12"
    assert november == []
    assert december == [StatRow(POINT, ITEM, "2026-12", 1)]


def test_utc_setting_keeps_the_utc_month(world: World) -> None:
    month, november, december = record_at(world, LATE_NOVEMBER_UTC, dt.UTC)
    assert month == "2026-11"
    assert november == [StatRow(POINT, ITEM, "2026-11", 1)]
    assert december == []


def test_local_month_and_date_of_an_instant() -> None:
    assert local_month(LATE_NOVEMBER_UTC, SHANGHAI) == "2026-12"
    assert local_month(LATE_NOVEMBER_UTC, dt.UTC) == "2026-11"
    assert local_date(LATE_NOVEMBER_UTC, SHANGHAI) == dt.date(2026, 12, 1)
    assert local_month(dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC), SHANGHAI) == "2027-01"


def test_day_start_is_local_midnight_as_a_utc_instant() -> None:
    half_past_midnight = dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC)  # 00:30 on 1 Dec in Shanghai
    assert day_start(half_past_midnight, SHANGHAI) == dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)
    assert day_start(half_past_midnight, dt.UTC) == dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC)
    assert day_start(half_past_midnight, SHANGHAI).tzinfo is dt.UTC


def test_timezone_setting_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARDSVC_TIMEZONE", raising=False)
    assert get_settings().zone == SHANGHAI
    monkeypatch.setenv("CARDSVC_TIMEZONE", "UTC")
    assert get_settings().zone == ZoneInfo("UTC")


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "/etc/localtime", "../zoneinfo/UTC"])
def test_invalid_timezone_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                                 name: str) -> None:
    monkeypatch.setenv("CARDSVC_TIMEZONE", name)
    with pytest.raises(ConfigError, match="CARDSVC_TIMEZONE"):
        get_settings()
