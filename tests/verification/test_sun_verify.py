"""Phone tap (SUN): verification, the compare-and-set replay guard under concurrency, bad input."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from cardsvc.cardcrypto import aes, sun
from cardsvc.errors import MalformedCredential, NotFound
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.cards import Card, CardStatus
from cardsvc.verification.keys import CardKeys
from cardsvc.verification.outcome import Verdict, Verification
from cardsvc.verification.service import VerificationService
from cardsvc.verification.store import read_audit
from tests.verification.replicas import replicas
from tests.verification.world import NTAG, IssuedCard, World

REPLAYS = 50


def _tap(world: World, url: str, svc: VerificationService | None = None) -> Verification:
    service = svc or world.svc
    return service.db.transact(lambda s: service.verify_sun(s, actor="anonymous", url=url))


def test_tap_ok_then_replay_then_next_tap(world: World) -> None:
    card = world.issue_card()
    first = world.tap_url(card)
    assert _tap(world, first).verdict is Verdict.OK
    replay = _tap(world, first)
    assert (replay.verdict, replay.reason, replay.card_number) == (Verdict.NOK, "replay", card.card_number)
    assert _tap(world, world.tap_url(card)).verdict is Verdict.OK


def test_counter_gaps_are_fine_but_going_back_is_not(world: World) -> None:
    card = world.issue_card()
    assert _tap(world, world.tap_url(card, 10)).verdict is Verdict.OK
    assert _tap(world, world.tap_url(card, 9)).reason == "replay"
    assert _tap(world, world.tap_url(card, 500)).verdict is Verdict.OK


def test_counter_zero_is_accepted_once(world: World) -> None:
    card = world.issue_card()
    url = world.tap_url(card, 0)
    assert _tap(world, url).verdict is Verdict.OK
    assert _tap(world, url).reason == "replay"


def test_wrong_mac_is_nok_and_does_not_move_the_counter(world: World) -> None:
    card = world.issue_card()
    url = world.tap_url(card, 5)
    bad = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert _tap(world, bad).reason == "sun_mac"
    assert _tap(world, url).verdict is Verdict.OK  # the forged tap did not burn counter 5


def test_revoked_card_is_nok(world: World) -> None:
    card = world.issue_card()
    world.set_card_status(card, CardStatus.revoked)
    assert _tap(world, world.tap_url(card)).reason == "card_revoked"


def test_unknown_chip_is_404_and_not_recorded(world: World) -> None:
    card = world.issue_card()
    url = world.tap_url(card)
    with world.session() as s:  # forget the chip: same keys, no card row
        row = s.exec(select(Card)).one()
        row.uid_hash = b"\x00" * 32
        s.add(row)
        s.commit()
    with pytest.raises(NotFound) as caught:
        _tap(world, url)
    assert caught.value.reason == "unknown_card"
    with world.session() as s:
        assert repo.audit_count(s) == 0


@pytest.mark.parametrize("url", ["https://t.example/t", "https://t.example/t?p=00&m=00",
                                 "https://t.example/t?p=" + "G" * 32 + "&m=" + "0" * 16,
                                 "https://t.example/t?p=" + "0" * 32 + "&p=" + "0" * 32 + "&m=" + "0" * 16])
def test_malformed_urls_raise(world: World, url: str) -> None:
    with pytest.raises(MalformedCredential):
        _tap(world, url)


def test_foreign_picc_data_is_unknown_card(world: World) -> None:
    with pytest.raises(NotFound):
        _tap(world, "https://t.example/t?p=" + "00" * 16 + "&m=" + "00" * 8)


def test_fifty_concurrent_replays_exactly_one_ok(world: World) -> None:
    card = world.issue_card()
    url = world.tap_url(card)
    with replicas(world, 5) as services, ThreadPoolExecutor(max_workers=REPLAYS) as pool:
        results = list(pool.map(lambda i: _tap(world, url, services[i % len(services)]), range(REPLAYS)))
    verdicts = [r.verdict for r in results]
    assert verdicts.count(Verdict.OK) == 1
    assert sorted({r.reason for r in results if r.verdict is Verdict.NOK}) == ["replay"]
    with world.session() as s:
        rows = read_audit(s)
    assert len(rows) == REPLAYS  # every attempt audited, one chain, no fork
    assert [r.seq for r in rows] == list(range(REPLAYS))


# --- regression: a wrong meta-read key version that also decrypts to tag C7 --------------------

WRONG_VERSION_MASTER = bytes(range(0x40, 0x50))  # fixed, so the search below is deterministic


def _two_version_service(world: World) -> tuple[VerificationService, bytes]:
    """The world's service with a newer key version 2 (tried first); cards stay on version 1."""
    v1 = world.card_keys.master(1)
    masters = MappingProxyType({1: v1, 2: MappingProxyType(dict.fromkeys(v1, WRONG_VERSION_MASTER))})
    keys = CardKeys(masters, world.card_keys.uid_index_key, world.card_keys.system_identifier)
    svc = dataclasses.replace(world.svc, card_keys=keys, sun_checkers={})
    config = world.profiles[NTAG].config
    assert isinstance(config, Ntag424Config)
    meta_v2 = config.card_key(config.sun.meta_read_key, keys.master(2), uid=b"",
                              system_identifier=keys.system_identifier)
    return svc, meta_v2


def _counter_where_version_2_also_opens(world: World, card: IssuedCard, meta_v2: bytes) -> int:
    """The first counter whose version-1 PICCData also decrypts to tag C7 under version 2."""
    for counter in range(1, 50_000):  # expected ~256 tries; (255/256)^50000 of finding none
        picc = bytes.fromhex(parse_qs(urlsplit(world.tap_url(card, counter)).query)["p"][0])
        if aes.cbc_decrypt(meta_v2, aes.ZERO_BLOCK, picc)[0] == sun.PICC_DATA_TAG:
            return counter
    raise AssertionError("no counter found where the wrong key version yields tag C7")


def test_wrong_key_version_yielding_c7_does_not_hide_the_card(world: World) -> None:
    card = world.issue_card()
    svc, meta_v2 = _two_version_service(world)
    counter = _counter_where_version_2_also_opens(world, card, meta_v2)
    url = world.tap_url(card, counter)
    assert len(svc.sun_checker().reveal(svc.sun_checker().parse(url))) == 2  # both versions open it
    result = _tap(world, url, svc)
    assert (result.verdict, result.card_number) == (Verdict.OK, card.card_number)
    assert _tap(world, url, svc).reason == "replay"  # the counter moved: the right card was found


def test_forged_mac_with_two_candidate_versions_is_still_nok(world: World) -> None:
    card = world.issue_card()
    svc, meta_v2 = _two_version_service(world)
    url = world.tap_url(card, _counter_where_version_2_also_opens(world, card, meta_v2))
    forged = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert (_tap(world, forged, svc).verdict, _tap(world, forged, svc).reason) == (Verdict.NOK, "sun_mac")
    assert _tap(world, url, svc).verdict is Verdict.OK
