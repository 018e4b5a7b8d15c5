"""The private-pcscd harness refuses loudly, naming what is missing; card images refuse bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cardsvc.emulator import pcscd
from cardsvc.emulator.echo import EchoCard
from cardsvc.emulator.images import image_path, load_image, save_image
from cardsvc.errors import ProfileError, ReaderUnavailable


def test_prerequisites_name_every_missing_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pcscd.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(pcscd, "vpcd_driver", lambda: None)
    monkeypatch.setattr(pcscd, "_pcscd_binary", lambda: None)
    with pytest.raises(ReaderUnavailable) as info:
        pcscd.check_prerequisites()
    text = info.value.diagnostics()
    assert "root privileges" in text and "pcscd" in text and "vsmartcard-vpcd" in text


def test_free_port_block_is_really_free() -> None:
    base = pcscd.free_port_block(4)
    assert all(pcscd._port_free(base + i) for i in range(4))
    assert not set(range(base, base + 4)) & pcscd.listening_ports()


def test_reader_names_and_ports_line_up(tmp_path: Path) -> None:
    stack = pcscd.PrivatePcscd(3, 41000, tmp_path, tmp_path / "link")
    assert stack.ports == [41000, 41001, 41002]
    assert stack.reader_names == ["Virtual PCD 00 00", "Virtual PCD 00 01", "Virtual PCD 1 00 00"]
    stack._write_config()
    entries = sorted((tmp_path / "reader.conf.d").iterdir())
    assert [e.name for e in entries] == ["vpcd00", "vpcd01"]
    assert "CHANNELID 0xA02A" in entries[1].read_text()
    assert 'FRIENDLYNAME "Virtual PCD 1"' in entries[1].read_text()


def test_image_round_trip_and_refusals(tmp_path: Path) -> None:
    card = EchoCard.blank()
    card.stored = b"\x01\x02"
    path = save_image(card, image_path(tmp_path, 1, 7, card.uid))
    assert path.name == f"1-7-{card.uid.hex().upper()}.json"
    assert load_image(path).to_image() == card.to_image()
    document = json.loads(path.read_text())
    bad_uid = tmp_path / "bad-uid.json"
    bad_uid.write_text(json.dumps({**document, "uid": "00"}))
    with pytest.raises(ProfileError, match="UID in the file"):
        load_image(bad_uid)
    not_image = tmp_path / "other.json"
    not_image.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ProfileError, match="not a card image"):
        load_image(not_image)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{")
    with pytest.raises(ProfileError, match="cannot read card image"):
        load_image(garbage)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**document, "family": "nope"}))
    with pytest.raises(ProfileError, match="no emulated card for family"):
        load_image(unknown)
