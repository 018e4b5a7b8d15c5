"""The skeleton's own contracts: settings, error tree, exit codes, log redaction."""

from __future__ import annotations

import logging
import re

import pytest

from cardsvc import errors
from cardsvc.cli.main import EXIT_CODES, exit_code_for
from cardsvc.config import DEV_KEY_PASSPHRASE, get_settings
from cardsvc.logging import RedactingFilter, redact


def test_production_refuses_default_passphrase() -> None:
    with pytest.raises(errors.ConfigError, match="CARDSVC_KEY_PASSPHRASE"):
        get_settings(env="production", key_passphrase=DEV_KEY_PASSPHRASE)


def test_production_accepts_real_passphrase(tmp_path) -> None:
    settings = get_settings(env="production", key_passphrase="a real one", data_dir=tmp_path)
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("cardsvc.sqlite3")


def test_database_url_override_wins(monkeypatch) -> None:
    monkeypatch.setenv("CARDSVC_DATABASE_URL", "postgresql+psycopg://x@h/db")
    assert get_settings().effective_database_url == "postgresql+psycopg://x@h/db"


def _all_errors(cls: type[errors.CardsvcError]) -> list[type[errors.CardsvcError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out += _all_errors(sub)
    return out


@pytest.mark.parametrize("cls", _all_errors(errors.CardsvcError), ids=lambda c: c.__name__)
def test_every_error_has_code_and_exit_code(cls: type[errors.CardsvcError]) -> None:
    assert cls.code and cls.code.isidentifier()
    assert any(issubclass(cls, base) for base, _ in EXIT_CODES)


def test_exit_codes_are_specific() -> None:
    assert exit_code_for(errors.CardRemoved("x")) == 5
    assert exit_code_for(errors.WrongKey("auth", sw=0x91AE, attempts_left=2)) == 6
    wrong = errors.WrongKey("auth", sw=0x63C2, attempts_left=2)
    assert "2 attempts left" in wrong.diagnostics() and "63C2" in wrong.diagnostics()


def test_error_codes_are_unique() -> None:
    codes = [c.code for c in _all_errors(errors.CardsvcError)]
    assert len(codes) == len(set(codes))


def test_redaction_masks_id_numbers_and_phones() -> None:
    text = "member 11010519491231002X phone 13800138000 card 2026000123"
    cleaned = redact(text)
    assert "11010519491231002X" not in cleaned and "13800138000" not in cleaned
    assert "2026000123" in cleaned


def test_redacting_filter_rewrites_records() -> None:
    record = logging.LogRecord("cardsvc.x", logging.INFO, __file__, 1, "id %s", ("110105194912310021",),
                               None)
    assert RedactingFilter().filter(record)
    assert "110105194912310021" not in record.getMessage()


def test_redaction_handles_full_width_forms_from_excel() -> None:
    full_width_id = "１１０１０５１９４９１２３１００２Ｘ"
    full_width_phone = "１３８００１３８０００"
    cleaned = redact(f"a {full_width_id} b {full_width_phone} c")
    assert full_width_id not in cleaned and full_width_phone not in cleaned
    assert "[ID-REDACTED]" in cleaned and "[PHONE-REDACTED]" in cleaned


def test_cli_error_line_keeps_the_error_code(tmp_path, monkeypatch, capsys) -> None:
    """The ``[code]`` of a CLI error reaches the user; rich markup must not swallow it."""
    from tests.support.cli import in_process_cli

    cli = in_process_cli(tmp_path, monkeypatch, capsys)
    code, _out, err = cli("card", "show", "0000000000000000")
    assert code != 0
    first = err.split("error:", 1)[1].splitlines()[0]
    assert re.search(r"\[[a-z_]+\]$", first.strip()), first
