"""Check-in days are local (``CARDSVC_TIMEZONE``): a programme runs on its dates in the federation's zone.

The world's programme runs 2026-11-24 … 2026-12-24. 00:30 on 24 November in Shanghai is 16:30Z on the
23rd: admitted in Shanghai, refused (the old UTC behaviour) when the zone is ``UTC``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cardsvc.config import get_settings
from cardsvc.credential import Algorithm
from cardsvc.credential.filestore import FileKeyStore
from cardsvc.errors import Conflict
from cardsvc.registry.db import engine_for
from cardsvc.verification.db import Database
from cardsvc.verification.recuperation import CheckinRequest, check_in, partner_eligibility
from cardsvc.verification.roles import Role
from cardsvc.verification.service import VerificationService
from cardsvc.verification.setup import build_verification
from cardsvc.verification.tokens import ClientRecord
from tests.verification.world import NOW, PROGRAMME, World

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_DAY_0030 = dt.datetime(2026, 11, 24, 0, 30, tzinfo=SHANGHAI)  # 2026-11-23T16:30Z
LAST_DAY_2330 = dt.datetime(2026, 12, 24, 23, 30, tzinfo=SHANGHAI)
DAY_AFTER_0030 = dt.datetime(2026, 12, 25, 0, 30, tzinfo=SHANGHAI)  # 2026-12-24T16:30Z
BASE = "base-beidaihe"


def partner() -> ClientRecord:
    return ClientRecord(client_id="b0b0b0b0b0b1", label="hotel desk", role=Role.partner, token_hash=bytes(32),
                        created_at=NOW - dt.timedelta(days=2), partner_base_id=BASE)


def zoned(world: World, tz: dt.tzinfo) -> VerificationService:
    return dataclasses.replace(world.svc, zone=tz)


def attempt(world: World, tz: dt.tzinfo, at: dt.datetime, *, offline: bool = False) -> str | None:
    """Check a fresh card in at ``at`` (online: the server's clock; offline: the base's time, synced
    an hour later); ``None`` when admitted, else the refusal's reason."""
    world.clock.now = at.astimezone(dt.UTC)
    world.programme()
    card = world.issue_card()
    if offline:
        world.clock.now = at.astimezone(dt.UTC) + dt.timedelta(hours=1)
    svc = zoned(world, tz)
    request = CheckinRequest(PROGRAMME, card.qr, "key-local-1", at if offline else None,
                             "offline" if offline else "online")
    try:
        result = svc.db.transact(lambda s: check_in(s, svc, partner(), request))
    except Conflict as exc:
        return exc.reason
    assert not result.replayed and result.checked_in_at == at
    return None


def test_0030_local_on_the_first_day_is_admitted(world: World) -> None:
    assert attempt(world, SHANGHAI, FIRST_DAY_0030) is None


def test_offline_0030_local_on_the_first_day_is_admitted(world: World) -> None:
    assert attempt(world, SHANGHAI, FIRST_DAY_0030, offline=True) is None


def test_2330_local_on_the_last_day_is_admitted(world: World) -> None:
    assert attempt(world, SHANGHAI, LAST_DAY_2330) is None


def test_0030_local_the_day_after_the_end_is_refused(world: World) -> None:
    assert attempt(world, SHANGHAI, DAY_AFTER_0030) == "programme_not_running"


@pytest.mark.parametrize(("at", "reason"),
                         [(FIRST_DAY_0030, "programme_not_running"), (DAY_AFTER_0030, None)])
def test_utc_setting_keeps_the_utc_date(world: World, at: dt.datetime, reason: str | None) -> None:
    assert attempt(world, dt.UTC, at) == reason


@pytest.mark.parametrize(("tz", "running"), [(SHANGHAI, True), (dt.UTC, False)])
def test_partner_view_eligibility_uses_the_local_date(world: World, tz: dt.tzinfo, running: bool) -> None:
    world.clock.now = FIRST_DAY_0030.astimezone(dt.UTC)
    world.programme()
    card = world.issue_card()
    with world.session() as s:
        result = world.svc.verify_qr(s, actor="b0b0b0b0b0b1", qr_text=card.qr)
        assert result.member is not None
        fields = partner_eligibility(s, result.member, BASE, result, tz)
    assert fields["eligibility"] == {PROGRAMME: running}


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC"])
def test_build_verification_passes_the_configured_zone(tmp_path: Path, zone: str) -> None:
    settings = get_settings(env="test", data_dir=tmp_path, key_passphrase="test-passphrase-1", timezone=zone)
    store = FileKeyStore(settings.key_store_dir, "test-passphrase-1", scrypt_n=2**10)
    store.create_issuer_key(Algorithm.eddsa, not_before=NOW - dt.timedelta(days=1))
    engine = engine_for(settings)
    try:
        svc = build_verification(settings, Database(engine), store)
    finally:
        engine.dispose()
    assert svc.zone == ZoneInfo(zone)
