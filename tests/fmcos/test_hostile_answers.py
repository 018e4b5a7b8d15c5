"""Fail closed on hostile or broken FMCOS answers: bad response MACs, a wrong INTERNAL
AUTHENTICATE cryptogram, short challenges and short reads. The MF admin key must still be the
factory key after every such failure, so the card can be completed afterwards."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cardsvc.drivers.base import PersonalisationPlan
from cardsvc.drivers.fmcos import FmcosDriver
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.emulator.fmcos_fs import FACTORY_KEY
from cardsvc.errors import CardIntegrityError, CardStatusError
from tests.support.cards import DirectConnection
from tests.support.tamper import TamperedConnection, cut_data, flip_before_sw, starts

H = bytes.fromhex


def _mf_key_is_factory(card: FmcosCard) -> bool:
    """The MF admin key is the factory key — or absent, right after ERASE DF (still recoverable)."""
    key_file = card.to_image()["mf"]["key_file"]
    keys = key_file["keys"] if key_file else []
    return not keys or bool(keys[0]["value"] == FACTORY_KEY.hex().upper())


def _counters(card: FmcosCard) -> list[str]:
    """Every key's error-counter byte, MF and application (``fourth`` of 39/36 keys)."""
    dfs = [card.to_image()["mf"], *card.to_image()["mf"]["dfs"]]
    return [k["fourth"] for df in dfs if df["key_file"] for k in df["key_file"]["keys"]]


def _finish(driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan) -> None:
    readout = driver.personalise(DirectConnection(card), plan)
    assert readout.credential == plan.credential and not _mf_key_is_factory(card)


@pytest.mark.parametrize(
    ("what", "prefix", "change"),
    [
        ("line-protected READ BINARY: response MAC", "04B0", flip_before_sw),
        ("line-protected READ BINARY: MAC cut off", "04B0", cut_data(2)),
        ("INTERNAL AUTHENTICATE self-test cryptogram", "0088", flip_before_sw),
    ],
)
def test_bad_answers_stop_before_the_mf_key_changes(driver: FmcosDriver, card: FmcosCard,
                                                    plan: PersonalisationPlan, what: str,
                                                    prefix: str,
                                                    change: Callable[[bytes], bytes]) -> None:
    conn = TamperedConnection(DirectConnection(card), starts(prefix), change)
    with pytest.raises(CardIntegrityError):
        driver.personalise(conn, plan)
    assert conn.fired, what
    assert _mf_key_is_factory(card)
    assert not any(apdu[:2] == H("84D4") and apdu[2] != 0x01 for apdu in conn.sent)  # no key update
    _finish(driver, card, plan)


def test_short_challenge_spends_no_try(driver: FmcosDriver, card: FmcosCard,
                                       plan: PersonalisationPlan) -> None:
    before = _counters(card)
    conn = TamperedConnection(DirectConnection(card), starts("0084000008"), cut_data(4))
    with pytest.raises(CardIntegrityError, match="GET CHALLENGE answered 4 bytes"):
        driver.personalise(conn, plan)
    assert not any(apdu[:2] == H("0082") for apdu in conn.sent)  # no EXTERNAL AUTHENTICATE sent
    assert _counters(card) == before
    _finish(driver, card, plan)


def test_short_status_marker_read_is_an_integrity_error(driver: FmcosDriver, card: FmcosCard,
                                                        plan: PersonalisationPlan) -> None:
    driver.personalise(DirectConnection(card), plan)
    conn = TamperedConnection(DirectConnection(card), starts("00B0000003"), cut_data(2))
    with pytest.raises(CardIntegrityError, match="status marker"):
        driver.read_back(conn, plan.master_keys)
    assert driver.read_back(DirectConnection(card), plan.master_keys).credential == plan.credential


def test_an_unexpected_status_word_is_never_success(driver: FmcosDriver, card: FmcosCard,
                                                    plan: PersonalisationPlan) -> None:
    conn = TamperedConnection(DirectConnection(card), starts("80E0"), lambda _r: H("6581"))
    with pytest.raises(CardStatusError) as caught:
        driver.personalise(conn, plan)
    assert caught.value.sw == 0x6581 and _mf_key_is_factory(card)
    _finish(driver, card, plan)
