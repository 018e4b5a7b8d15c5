"""Fail closed on hostile or broken answers: bad MACs from the card, short frames, replayed
commands, and status words the driver must not read as success. Key 0 must stay factory on every
failure before the commit, so the card can still be completed."""

from __future__ import annotations

import pytest

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto.ev2 import CommMode
from cardsvc.drivers.base import CardState, PersonalisationPlan
from cardsvc.drivers.ntag424 import Ntag424Driver
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.errors import CardIntegrityError, CardStatusError, WrongKey
from tests.ntag424.test_emulator import SELECT_APP, auth, native, tx
from tests.support.cards import DirectConnection
from tests.support.tamper import TamperedConnection, cut_data, flip_before_sw, starts

H = bytes.fromhex


def _key0_is_factory(card: Ntag424Card) -> bool:
    slot = card.to_image()["keys"][0]
    return bool(slot["key"] == "00" * 16 and slot["version"] == 0)


def _finish(driver: Ntag424Driver, card: Ntag424Card, plan: PersonalisationPlan) -> None:
    readout = driver.personalise(DirectConnection(card), plan)
    assert readout.credential == plan.credential and not _key0_is_factory(card)


@pytest.mark.parametrize(
    ("what", "prefix"),
    [
        ("WriteData response MAC", "908D"),
        ("ChangeFileSettings response MAC", "905F"),
        ("ChangeKey response MAC", "90C4"),
        ("ReadData FULL response (file 03)", "90AD0000"),
    ],
)
def test_bad_response_mac_stops_before_the_commit(driver: Ntag424Driver, card: Ntag424Card,
                                                  plan: PersonalisationPlan, what: str,
                                                  prefix: str) -> None:
    conn = TamperedConnection(DirectConnection(card), starts(prefix), flip_before_sw)
    with pytest.raises(CardIntegrityError):
        driver.personalise(conn, plan)
    assert conn.fired, what
    assert _key0_is_factory(card)
    assert driver.status(DirectConnection(card)).state is CardState.partial
    _finish(driver, card, plan)


@pytest.mark.parametrize(
    ("what", "prefix", "keep"),
    [
        ("E(RndB) cut to 8 bytes", "9071", 8),
        ("auth answer cut to 16 bytes", "90AF000020", 16),
        ("GetKeyVersion with no data", "9064", 0),
        ("MAC cut off a WriteData answer", "908D", 4),
    ],
)
def test_truncated_answers_are_integrity_errors(driver: Ntag424Driver, card: Ntag424Card,
                                                plan: PersonalisationPlan, what: str, prefix: str,
                                                keep: int) -> None:
    conn = TamperedConnection(DirectConnection(card), starts(prefix), cut_data(keep))
    with pytest.raises(CardIntegrityError):
        driver.personalise(conn, plan)
    assert conn.fired, what
    assert _key0_is_factory(card)
    _finish(driver, card, plan)


def test_a_stray_more_frames_status_is_not_success(driver: Ntag424Driver, card: Ntag424Card,
                                                   plan: PersonalisationPlan) -> None:
    conn = TamperedConnection(DirectConnection(card), starts("905F"), lambda r: r[:-2] + H("91AF"))
    with pytest.raises(CardStatusError) as caught:
        driver.personalise(conn, plan)
    assert caught.value.sw == 0x91AF and _key0_is_factory(card)


def test_a_wrong_key_answer_during_personalisation_is_not_retried(
        driver: Ntag424Driver, card: Ntag424Card, plan: PersonalisationPlan) -> None:
    conn = TamperedConnection(DirectConnection(card), starts("90AF000020"), lambda _r: H("91AE"))
    with pytest.raises(WrongKey):
        driver.personalise(conn, plan)
    assert sum(apdu[:2] == b"\x90\x71" for apdu in conn.sent) == 1


def test_emulator_refuses_a_replayed_command_and_ends_the_session(card: Ntag424Card) -> None:
    assert tx(card, SELECT_APP)[1] == 0x9000
    sm = auth(card, 0)
    field = sm.protect_command(0xF5, b"\x02", b"", CommMode.mac)
    body, sw = native(card, 0xF5, field)
    assert sw == 0x9100
    sm.open_response(0x00, body, CommMode.mac)
    assert native(card, 0xF5, field)[1] == 0x911E  # same CmdCtr again: integrity error
    fresh_field = sm.protect_command(0xF5, b"\x02", b"", CommMode.mac)
    assert native(card, 0xF5, fresh_field) == (H("0000E0EE000100"), 0x9100)  # session gone: plain


def test_emulator_refuses_a_command_from_the_future(card: Ntag424Card) -> None:
    assert tx(card, SELECT_APP)[1] == 0x9000
    sm = auth(card, 0)
    sm.cmd_ctr += 1  # the PCD skipped a counter value
    body, sw = native(card, 0x51, sm.protect_command(0x51, b"", b"", CommMode.full))
    assert (body, sw) == (b"", 0x911E)
    assert native(card, 0x51, b"")[1] == 0x91AE  # GetCardUID now needs authentication again


@pytest.mark.parametrize(
    "apdu",
    [
        "90AD0000",  # no data at all
        "90AD000003020000",  # ReadData header cut short
        "90AD00000702000000000000",  # ReadData without Le is still a command
        "908D00000703000000010000AA",  # Lc says 7 bytes, 8 follow
        "9071000001",  # Lc without data
        "00A4040C",  # SELECT without a name
        "00B0",  # not even a header
    ],
)
def test_malformed_apdus_get_an_error_status(card: Ntag424Card, apdu: str) -> None:
    assert tx(card, SELECT_APP)[1] == 0x9000
    raw = card.process(H(apdu))
    assert len(raw) >= 2
    sw = int.from_bytes(raw[-2:], "big")
    if apdu == "90AD00000702000000000000":
        assert sw == 0x9100  # a well-formed case-3 APDU: the card answers it
    else:
        assert sw not in (0x9000, 0x9100, 0x91AF), f"{apdu} -> {sw:04X}"


def test_read_data_beyond_the_file_is_a_boundary_error(card: Ntag424Card) -> None:
    assert tx(card, SELECT_APP)[1] == 0x9000
    header = b"\x02" + (300).to_bytes(3, "little") + bytes(3)  # offset past 256, length "all"
    assert native(card, 0xAD, header) == (b"", 0x91BE)
    command = CommandApdu(0x90, 0xAD, data=b"\x02" + (256).to_bytes(3, "little") + bytes(3), le=256)
    assert tx(card, command.to_bytes()) == (b"", 0x91BE)


def test_card_memory_repr_shows_no_keys(card: Ntag424Card) -> None:
    from cardsvc.emulator.fmcos import FmcosCard

    secret = bytes(range(0xA0, 0xB0))
    card._nvm.keys[2] = secret  # the memory object itself is what tracebacks print
    assert secret.hex() not in repr(card._nvm).lower() and "keys" not in repr(card._nvm)
    fmcos = FmcosCard.blank(uid=bytes(4))
    assert "ffff" not in repr(fmcos.mf).lower()  # the factory key 16 x FF
