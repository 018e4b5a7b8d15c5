"""Production keys on a PKCS#11 token (a real SoftHSM2 token per test): the key commands, AN10922
inside the token, and a card issued with token keys then verified through the API (QR + SUN).

The key store comes from the settings (``CARDSVC_PKCS11_MODULE``, ``_TOKEN``, ``_PIN``) through
``open_key_store`` — the same call `batch issue` and the API's ``db_services`` make.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from sqlmodel import Session, select
from typer.testing import CliRunner

from cardsvc.api.app import create_app
from cardsvc.api.services import db_services
from cardsvc.cardcrypto import aes
from cardsvc.cardcrypto.an10922 import diversification_input, diversify_aes128
from cardsvc.cli.main import build_app
from cardsvc.config import get_settings
from cardsvc.credential import to_qr_text
from cardsvc.credential.hsmstore import Pkcs11KeyStore
from cardsvc.credential.keystore import open_key_store
from cardsvc.drivers.base import driver_for
from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.direct import DirectLink
from cardsvc.errors import KeyStoreError
from cardsvc.profiles import load_profiles
from cardsvc.registry.cards import Card
from cardsvc.registry.db import make_engine
from cardsvc.verification.roles import Role
from tests.api.conftest import Api
from tests.issuance.support import blank_cards, seed_members
from tests.support.pcsc_stack import PcscStack

pytestmark = pytest.mark.softhsm

MODULES = (Path("/usr/lib/softhsm/libsofthsm2.so"), Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"))
TOKEN, PIN = "cardsvc-prod", "246810"

Cli = Callable[..., Any]


def _module() -> Path:
    found = next((p for p in MODULES if p.exists()), None)
    assert found is not None and shutil.which("softhsm2-util"), \
        "SoftHSM2 is required for these tests: apt-get install softhsm2"
    return found


def _point_softhsm(conf: str | None, module: Path) -> None:
    """SoftHSM2 reads SOFTHSM2_CONF (and scans its tokens) when the library initialises, and
    python-pkcs11 keeps one library per process: unload it, so the next user loads it afresh under
    the configuration in force then (this test's token directory, or whatever came before)."""
    if conf is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = conf
    pkcs11.unload(str(module))


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh SoftHSM2 token and a production environment that names it (no file passphrase)."""
    module = _module()
    root = tmp_path / "softhsm"
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--so-pin", "13579",
                    "--pin", PIN], check=True, capture_output=True,
                   env={**os.environ, "SOFTHSM2_CONF": str(conf)})
    _point_softhsm(str(conf), module)
    for name, value in {"ENV": "production", "DATA_DIR": str(tmp_path / "var"), "ISSUER": "XCGH",
                        "PKCS11_MODULE": str(module), "PKCS11_TOKEN": TOKEN, "PKCS11_PIN": PIN,
                        "PUBLIC_BASE_URL": "https://verify.example.cn"}.items():
        monkeypatch.setenv(f"CARDSVC_{name}", value)
    monkeypatch.delenv("CARDSVC_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("CARDSVC_DATABASE_URL", raising=False)
    yield module
    _point_softhsm(previous, module)


@pytest.fixture
def cli(token: Path) -> Cli:
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(build_app(), list(args), catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result.stdout

    return invoke


def test_key_commands_work_on_the_token(cli: Cli, tmp_path: Path) -> None:
    cli("keys", "init")
    assert json.loads(cli("pii-keys", "create", "--json")) == {"pii/index": 1, "pii/data": 1}
    made = json.loads(cli("card-keys", "create", "--version", "1", "--json"))
    store = open_key_store(get_settings())
    assert isinstance(store, Pkcs11KeyStore)
    assert store.secret_versions("card/uid-index") == [1] and store.issuer_keys()
    listed = json.loads(cli("card-keys", "list", "--json"))
    assert {r["role"] for r in listed["keys"]} == set(made["created"])
    assert listed["new_batches"]["ntag424-dna"] == 1
    with pytest.raises(KeyStoreError, match="already exist"):
        cli("pii-keys", "create")
    assert not (tmp_path / "var" / "keys").exists()  # nothing went to a file store


def test_an10922_runs_in_the_token_with_a_non_extractable_master(token: Path) -> None:
    """Card master keys could stay in the token: AES-ECB of the zero block gives the CMAC subkey,
    AES-CBC (zero IV) over the AN10922-padded input gives the diversified key. Plain CKM_AES_CMAC
    is NOT AN10922 for inputs under 16 bytes (it pads to 16, AN10922 to 32) — our M is 14 bytes."""
    master = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    with pkcs11.lib(str(token)).get_token(token_label=TOKEN).open(user_pin=PIN, rw=True) as session:
        _check_in_token_diversification(session, master)


def _check_in_token_diversification(session: Any, master: bytes) -> None:
    key = session.create_object({
        Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES, Attribute.VALUE: master,
        Attribute.TOKEN: False, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
        Attribute.ENCRYPT: True, Attribute.SIGN: True, Attribute.LABEL: "an10922-probe"})
    with pytest.raises(pkcs11.AttributeSensitive):
        key[Attribute.VALUE]
    for m in (diversification_input(uid=bytes.fromhex("04DE5F1EACC040"), aid=b"\x30\x42\xf5",
                                    system_identifier=b"XCGH"),
              bytes.fromhex("04782E21801D803042F54E585020416275")):  # AN10922 §2.2.1's 17-byte M
        expected = diversify_aes128(master, m)
        assert _diversify_in_token(key, m) == expected
        plain = bytes(key.sign(b"\x01" + m, mechanism=Mechanism.AES_CMAC))
        assert (plain == expected) is (len(m) + 1 > aes.BLOCK)


def _diversify_in_token(key: Any, m: bytes) -> bytes:
    k1, k2 = aes.cmac_subkeys(bytes(key.encrypt(bytes(16), mechanism=Mechanism.AES_ECB)), 0x87)
    data = b"\x01" + m
    if len(data) == 32:
        message, subkey = data, k1
    else:
        message = aes.pad_m2(data, aes.BLOCK)
        message, subkey = message + bytes(32 - len(message)), k2
    last = aes.xor(message[-16:], subkey)
    cbc = key.encrypt(message[:-16] + last, mechanism=Mechanism.AES_CBC, mechanism_param=bytes(16))
    return bytes(cbc)[-16:]


@pytest.mark.pcsc
def test_card_issued_with_token_keys_verifies_after_rotation(
        cli: Cli, pcsc_stack: Callable[[int], PcscStack], tmp_path: Path) -> None:
    """Signing, PII and card master keys in SoftHSM2: `batch issue` writes a v1 card, the card master
    keys are rotated to v2, the next batch writes a v2 card; the API (keys from the same token)
    accepts both by QR and by phone tap."""
    cli("init")
    cli("keys", "init")
    cli("pii-keys", "create")
    cli("card-keys", "create", "--version", "1")
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cardsvc.sqlite3'}")
    seed_members(engine, 2)
    cards = blank_cards("ntag424", 2)
    stack = pcsc_stack(1)
    stack.emulate([cards], feed=True)
    reader = stack.reader_names[0]
    _issue(cli, tmp_path, "B1", f"{1:032x}", reader)
    cli("card-keys", "create", "--version", "2")
    _issue(cli, tmp_path, "B2", f"{2:032x}", reader)
    with Session(engine) as session:
        issued = {c.key_version: c for c in session.exec(select(Card)).all() if c.credential}
    engine.dispose()
    assert sorted(issued) == [1, 2]
    for version, card in zip((1, 2), cards, strict=True):
        qr, sun = _verify(to_qr_text(issued[version].credential or b""), _phone_tap(card))
        assert (qr["outcome"], sun["outcome"]) == ("OK", "OK"), (version, qr, sun)
        assert qr["card_number"] == sun["card_number"] == issued[version].card_number


def _issue(cli: Cli, tmp_path: Path, label: str, public_id: str, reader: str) -> None:
    members = tmp_path / f"{label}.txt"
    members.write_text(public_id + "\n")
    cli("batch", "create", label, "--members", str(members))
    events = [json.loads(line) for line in cli("batch", "issue", label, "--readers", reader,
                                               "--json").splitlines()]
    assert [e["outcome"] for e in events[:-1]] == ["issued"], events


def _phone_tap(card: VirtualCard) -> str:
    profile = load_profiles(get_settings().effective_profiles_dir)["ntag424-dna"]
    url = driver_for(profile).prove(DirectLink(card, reader="phone"), b"").payload.decode("ascii")
    query = urlsplit(url).query
    return f"/v1/verify/sun?{query}"


def _verify(qr_text: str, sun_path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = get_settings()
    services = db_services(settings)  # opens the key store from the settings: the token
    with asyncio.Runner() as runner:
        api = Api(create_app(settings, services=services), runner)
        token = api.token(Role.admin)
        qr = api.request("POST", "/v1/verify/qr", token=token, json={"qr": qr_text}).json()
        sun = api.request("GET", sun_path, token=token).json()
        runner.run(api.client.aclose())
        runner.run(services.aclose())
    return qr, sun
