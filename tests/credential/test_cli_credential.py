"""`cardsvc keys`, `cardsvc trust` and `cardsvc verify` end to end on a temporary data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cardsvc.cli.main import build_app
from cardsvc.config import get_settings
from cardsvc.credential import (
    issue_credential,
    open_key_store,
    render_qr_png,
    to_qr_text,
)
from cardsvc.errors import ConfigError, KeyStoreError
from tests.support.credentials import make_claims

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CARDSVC_ENV", "test")
    monkeypatch.setenv("CARDSVC_KEY_PASSPHRASE", "cli test passphrase")
    monkeypatch.setenv("CARDSVC_ISSUER", "SZGH")
    monkeypatch.delenv("CARDSVC_PKCS11_MODULE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def initialised(data_dir: Path) -> Path:
    code, out = _run("keys", "init")
    assert code == 0 and "issuer key" in out
    assert _run("trust", "export", "--out", "bundle.cbor", "--no-db")[0] == 0
    assert _run("trust", "anchor", "--out", "anchor.cose")[0] == 0
    return data_dir


def _credential(card_number: str = "202600012345") -> bytes:
    store = open_key_store(get_settings())
    now = datetime.now(UTC)
    claims = make_claims(card_number, issued_at=now,
                         expires_at=now + timedelta(days=30))
    return issue_credential(store.issuer_signer(now=now), claims)


def test_keys_life_cycle(data_dir: Path) -> None:
    assert _run("keys", "init", "--alg", "ES256")[0] == 0
    with pytest.raises(KeyStoreError, match="already has issuer keys"):
        _run("keys", "init")
    assert _run("keys", "rotate", "--overlap", "2h")[0] == 0
    code, out = _run("keys", "list", "--json")
    rows = json.loads(out)
    issuers = [r for r in rows if r["role"] == "issuer"]
    assert code == 0 and len(issuers) == 2 and [r["signs_now"] for r in issuers] == [True, False]
    assert issuers[0]["alg"] == "ES256" and issuers[0]["not_after"] == issuers[1]["not_before"]
    assert _run("keys", "retire", issuers[0]["kid"])[0] == 0
    assert _run("keys", "revoke", issuers[1]["kid"])[0] == 0
    states = [r["state"] for r in json.loads(_run("keys", "list", "--json")[1]) if r["role"] == "issuer"]
    assert states == ["retired", "revoked"]
    assert (data_dir / "keys" / "keys.cbor").exists()


def test_verify_ok_and_json(initialised: Path) -> None:
    text = to_qr_text(_credential())
    code, out = _run("verify", text, "--bundle", "bundle.cbor", "--anchor", "anchor.cose")
    assert code == 0 and "OK" in out and "13" in out
    code, out = _run("verify", text, "--bundle", "bundle.cbor", "--anchor", "anchor.cose", "--json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "OK" and data["claims"]["card_number"] == "202600012345"
    assert len(data["checks"]) == 13


def test_verify_with_the_local_store_as_anchor(initialised: Path) -> None:
    code, out = _run("verify", to_qr_text(_credential()), "--bundle", "bundle.cbor")
    assert code == 0 and "OK" in out


def test_verify_without_any_anchor_is_refused(data_dir: Path) -> None:
    Path("bundle.cbor").write_bytes(b"")
    with pytest.raises(ConfigError, match="no trust anchor"):
        _run("verify", "UC1:", "--bundle", "bundle.cbor")


def test_verify_from_png(initialised: Path) -> None:
    text = to_qr_text(_credential())
    Path("card.png").write_bytes(render_qr_png(text))
    code, out = _run("verify", "--file", "card.png", "--bundle", "bundle.cbor", "--anchor",
                     "anchor.cose", "--json")
    assert code == 0 and json.loads(out)["status"] == "OK"


def test_verify_revoked_is_nok_exit_7(initialised: Path) -> None:
    Path("revoked.txt").write_text("# revoked cards\n202600000001\n\n")
    assert _run("trust", "export", "--out", "bundle.cbor", "--revoked", "revoked.txt", "--no-db")[0] == 0
    code, out = _run("verify", to_qr_text(_credential("202600000001")), "--bundle", "bundle.cbor",
                     "--anchor", "anchor.cose", "--json")
    assert code == 7 and json.loads(out)["reason"] == "revoked"


def test_verify_tampered_bundle_is_check_exit_13(initialised: Path) -> None:
    raw = bytearray(Path("bundle.cbor").read_bytes())
    raw[-1] ^= 1
    Path("bundle.cbor").write_bytes(bytes(raw))
    code, out = _run("verify", to_qr_text(_credential()), "--bundle", "bundle.cbor",
                     "--anchor", "anchor.cose", "--json")
    assert code == 13 and json.loads(out)["reason"] == "bundle_signature"


def test_trust_show(initialised: Path) -> None:
    code, out = _run("trust", "show", "bundle.cbor", "--anchor", "anchor.cose", "--json")
    data = json.loads(out)
    assert code == 0 and data["fresh"] is True and data["issuer"] == "SZGH"
    assert data["revoked_cards"] == 0 and [k["state"] for k in data["keys"]] == ["active"]
    code, out = _run("trust", "show", "bundle.cbor", "--anchor", "anchor.cose")
    assert code == 0 and "sequence" in out


def test_verify_garbage_is_nok(initialised: Path) -> None:
    code, out = _run("verify", "HELLO", "--bundle", "bundle.cbor", "--anchor", "anchor.cose")
    assert code == 7 and "NOK" in out and "prefix" in out


def test_verify_needs_exactly_one_input(initialised: Path) -> None:
    with pytest.raises(ConfigError):
        _run("verify", "--bundle", "bundle.cbor", "--anchor", "anchor.cose")


def test_export_needs_keys(data_dir: Path) -> None:
    with pytest.raises(KeyStoreError, match="no active signing key"):
        _run("trust", "export", "--out", "bundle.cbor", "--no-db")


def test_export_reads_the_registry_by_default(initialised: Path) -> None:
    assert _run("init")[0] == 0  # schema at head, no cards yet
    code, out = _run("trust", "export", "--out", "bundle.cbor")
    assert code == 0 and "0 revoked cards" in out


def test_export_refuses_an_uninitialised_registry(initialised: Path) -> None:
    with pytest.raises(ConfigError, match="schema"):
        _run("trust", "export", "--out", "bundle.cbor")
