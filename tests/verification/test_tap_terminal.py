"""`cardsvc tap`'s exchange against the real app: emulated cards personalised by the real drivers
with the world's master keys, a fresh challenge per tap, the server's verdict."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from cardsvc.cli.tap import raise_problem, tap_once
from cardsvc.config import Settings, get_settings
from cardsvc.drivers.base import MasterKeys, PersonalisationPlan, driver_for
from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.errors import NotFound, UnknownCard
from cardsvc.registry.cards import Card, CardStatus
from cardsvc.verification.roles import Role
from tests.api.conftest import Api
from tests.api.verify_support import make_db_api
from tests.support.cards import DirectConnection
from tests.verification.world import FMCOS, NTAG, IssuedCard, World, make_world, sqlite_url


class ApiServer:
    """:class:`cardsvc.cli.tap.TapServer` over the in-process app."""

    def __init__(self, api: Api, token: str) -> None:
        self.api, self.token = api, token

    def post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        response = self.api.request("POST", path, token=self.token, json=body)
        if response.status_code >= 400:
            raise_problem(response.status_code, response.json())
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made


@pytest.fixture
def server(world: World) -> Iterator[ApiServer]:
    settings: Settings = get_settings(env="test")
    with make_db_api(settings, world) as api:
        yield ApiServer(api, api.token(Role.service_point))


def personalised(world: World, profile: str) -> tuple[VirtualCard, IssuedCard]:
    uid = os.urandom(7) if profile == NTAG else os.urandom(4)
    card: VirtualCard = Ntag424Card.blank(uid=uid) if profile == NTAG else FmcosCard.blank(uid=uid)
    issued = world.issue_card(profile=profile, uid=uid)
    keys = MasterKeys(version=1, keys=dict(world.card_keys.master(1)),
                      system_identifier=world.card_keys.system_identifier)
    plan = PersonalisationPlan(card_number=issued.card_number, credential=issued.credential, master_keys=keys,
                               sun_base_url="https://t.example/t" if profile == NTAG else None)
    driver_for(world.profiles[profile]).personalise(DirectConnection(card), plan)
    return card, issued


@pytest.mark.parametrize("profile", [FMCOS, NTAG])
def test_tap_ok_twice(world: World, server: ApiServer, profile: str) -> None:
    card, issued = personalised(world, profile)
    for _ in range(2):  # a new challenge (and for NTAG a new SUN counter) each time
        result = tap_once(DirectConnection(card), world.profiles, server)
        assert (result["outcome"], result["card_number"]) == ("OK", issued.card_number)
        assert result["member"]["name"] == "张三丰"


def test_tap_revoked_card(world: World, server: ApiServer) -> None:
    card, issued = personalised(world, FMCOS)
    world.set_card_status(issued, CardStatus.revoked)
    result = tap_once(DirectConnection(card), world.profiles, server)
    assert (result["outcome"], result["reason"], result["member"]) == ("NOK", "card_revoked", None)


def test_tap_card_with_foreign_keys_is_nok(world: World, server: ApiServer) -> None:
    uid = os.urandom(4)
    card = FmcosCard.blank(uid=uid)
    issued = world.issue_card(profile=FMCOS, uid=uid)
    foreign = MasterKeys(version=1, keys={r: os.urandom(16) for r in world.card_keys.master(1)},
                         system_identifier=world.card_keys.system_identifier)
    driver_for(world.profiles[FMCOS]).personalise(
        DirectConnection(card), PersonalisationPlan(issued.card_number, issued.credential, foreign))
    result = tap_once(DirectConnection(card), world.profiles, server)
    assert (result["outcome"], result["reason"]) == ("NOK", "card_proof")


def test_unissued_chip_and_unknown_atr(world: World, server: ApiServer) -> None:
    card, _ = personalised(world, FMCOS)
    with world.session() as s:  # the chip is not bound to any card row any more
        for row in s.exec(select(Card)):
            row.uid_hash = os.urandom(32)
            s.add(row)
        s.commit()
    with pytest.raises(NotFound) as caught:
        tap_once(DirectConnection(card), world.profiles, server)
    assert caught.value.reason == "unknown_card"
    with pytest.raises(UnknownCard):
        tap_once(DirectConnection(card), {}, server)
