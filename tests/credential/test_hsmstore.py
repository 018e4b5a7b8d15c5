"""PKCS#11 key store on a real SoftHSM2 token created in a temporary directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass
from typer.testing import CliRunner

from cardsvc.cli.main import build_app
from cardsvc.config import get_settings
from cardsvc.credential import (
    Algorithm,
    OfflineVerifier,
    Pkcs11Config,
    TrustAnchor,
    TrustBundle,
    VerificationStatus,
    build_trust_bundle,
    issue_credential,
    open_key_store,
)
from cardsvc.credential.hsmstore import Pkcs11KeyStore
from cardsvc.errors import KeyStoreError
from tests.support.credentials import NOW, make_claims

pytestmark = pytest.mark.softhsm

MODULE_CANDIDATES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
)
TOKEN = "cardsvc-test"
PIN = "123456"


def _module() -> Path:
    found = next((p for p in MODULE_CANDIDATES if p.exists()), None)
    assert found is not None, "SoftHSM2 is required for these tests: apt-get install softhsm2"
    assert shutil.which("softhsm2-util"), "softhsm2-util is required: apt-get install softhsm2"
    return found


@pytest.fixture(scope="module")
def hsm_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Config]:
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--so-pin", "654321",
                    "--pin", PIN], check=True, capture_output=True)
    yield Pkcs11Config(_module(), TOKEN, PIN)
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture(scope="module")
def hsm(hsm_config: Pkcs11Config) -> Iterator[Pkcs11KeyStore]:
    store = open_key_store(get_settings(), pkcs11=hsm_config)
    assert isinstance(store, Pkcs11KeyStore)
    yield store
    store.close()


@pytest.mark.parametrize("alg", list(Algorithm))
def test_token_keys_sign_verifiable_credentials(hsm: Pkcs11KeyStore, alg: Algorithm) -> None:
    key = hsm.rotate_issuer_key(alg, now=NOW - timedelta(days=30), overlap=timedelta(0))
    signer = hsm.issuer_signer(now=NOW)
    assert signer.kid == key.kid and signer.alg is alg
    bundle_key = hsm.create_bundle_key(Algorithm.eddsa, not_before=NOW - timedelta(days=1))
    credential = issue_credential(signer, make_claims())
    raw = build_trust_bundle(hsm.bundle_signer(now=NOW), hsm.issuer_keys(), [], 1,
                             NOW - timedelta(hours=1), NOW + timedelta(days=1), issuer="SZGH")
    bundle = TrustBundle.load(raw, TrustAnchor.from_key(bundle_key))
    result = OfflineVerifier(bundle, clock=lambda: NOW).verify(credential)
    assert result.status is VerificationStatus.ok


def test_private_keys_are_not_extractable(hsm: Pkcs11KeyStore, hsm_config: Pkcs11Config) -> None:
    hsm.rotate_issuer_key(Algorithm.eddsa, now=NOW, overlap=timedelta(0))
    token = pkcs11.lib(str(hsm_config.module)).get_token(token_label=TOKEN)
    with token.open() as session:  # shares this process's login
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
        assert keys
        for key in keys:
            assert key[Attribute.EXTRACTABLE] is False and key[Attribute.SENSITIVE] is True
            with pytest.raises(pkcs11.PKCS11Error):
                key[Attribute.VALUE]


def test_named_secrets_on_the_token(hsm: Pkcs11KeyStore) -> None:
    assert hsm.ensure_secret("card-master/app", 16) == 1
    assert hsm.ensure_secret("card-master/app", 16) == 1
    assert hsm.create_secret_version("card-master/app", 16) == 2
    version, value = hsm.secret("card-master/app")
    assert version == 2 and len(value) == 16 and value != hsm.secret("card-master/app", 1)[1]
    assert hsm.secret_versions("card-master/app") == [1, 2]
    with pytest.raises(KeyStoreError):
        hsm.secret("card-master/none")


def test_catalogue_survives_reopening(hsm: Pkcs11KeyStore, hsm_config: Pkcs11Config) -> None:
    hsm.ensure_secret("pii/index", 32)
    again = Pkcs11KeyStore.open(hsm_config)
    try:
        assert again.secret("pii/index") == hsm.secret("pii/index")
        assert [k.kid for k in again.issuer_keys()] == [k.kid for k in hsm.issuer_keys()]
    finally:
        again.close()


def test_wrong_pin_fails_before_signing(hsm_config: Pkcs11Config) -> None:
    # a fresh process: PKCS#11 login state is per process and this one is logged in
    script = (
        "import sys; from pathlib import Path\n"
        "from cardsvc.credential.hsmstore import Pkcs11KeyStore\n"
        "from cardsvc.credential.keystore import Pkcs11Config\n"
        "from cardsvc.errors import KeyStoreError\n"
        "try:\n"
        f"    Pkcs11KeyStore.open(Pkcs11Config(Path({str(hsm_config.module)!r}), {TOKEN!r}, '000000'))\n"
        "except KeyStoreError as exc:\n"
        "    print(exc.message); sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "wrong PKCS#11 user PIN"


def test_missing_token_and_module(hsm_config: Pkcs11Config, tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="no PKCS#11 token"):
        Pkcs11KeyStore.open(Pkcs11Config(hsm_config.module, "no-such-token", PIN))
    with pytest.raises(KeyStoreError, match="not found"):
        open_key_store(get_settings(), pkcs11=Pkcs11Config(tmp_path / "none.so", TOKEN, PIN))


def test_cli_lists_token_keys(hsm: Pkcs11KeyStore, hsm_config: Pkcs11Config,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSVC_PKCS11_PIN", PIN)
    hsm.rotate_issuer_key(Algorithm.es256, now=NOW, overlap=timedelta(0))
    result = CliRunner().invoke(build_app(), ["keys", "list", "--json", "--pkcs11-module",
                                              str(hsm_config.module), "--token", TOKEN],
                                catch_exceptions=False)
    assert result.exit_code == 0
    kids = {row["kid"] for row in json.loads(result.output) if row["role"] == "issuer"}
    assert kids == {k.kid.hex() for k in hsm.issuer_keys()}


def test_pin_is_not_in_the_config_repr(hsm_config: Pkcs11Config) -> None:
    assert PIN not in repr(hsm_config) and TOKEN in repr(hsm_config)
