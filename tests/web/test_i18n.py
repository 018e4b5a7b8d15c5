"""The message catalog: every key in both languages, same placeholders; templates use known keys."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

import cardsvc.web
from cardsvc.web.i18n import MESSAGES, Lang, parse_lang, translate

TEMPLATES = Path(cardsvc.web.__file__).parent / "templates"
_USED = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_every_key_has_both_languages_with_the_same_placeholders(key: str) -> None:
    texts = MESSAGES[key]
    assert set(texts) == set(Lang)
    assert all(texts[lang].strip() for lang in Lang)
    assert _placeholders(texts[Lang.zh]) == _placeholders(texts[Lang.en])


def test_templates_use_only_catalog_keys() -> None:
    used = {key for path in TEMPLATES.rglob("*.html") for key in _USED.findall(path.read_text())}
    assert used, "no t('…') calls found: the scan is broken"
    assert sorted(used - set(MESSAGES)) == []


def test_unknown_language_falls_back_to_chinese_and_unknown_key_raises() -> None:
    assert parse_lang("fr") is Lang.zh and parse_lang(None) is Lang.zh and parse_lang("en") is Lang.en
    assert translate(Lang.en, "error.internal", error_id="abc").endswith("abc to the administrator.")
    with pytest.raises(KeyError):
        translate(Lang.zh, "no.such.key")


def test_every_role_and_navigation_entry_has_a_message() -> None:
    from cardsvc.verification.roles import Role
    from cardsvc.web.access import PAGES

    wanted = {f"role.{role.value}" for role in Role} | {p.nav for p in PAGES.values() if p.nav}
    assert sorted(wanted - set(MESSAGES)) == []
