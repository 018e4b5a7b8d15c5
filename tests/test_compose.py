"""docker-compose.yml validates with the compose tool, refuses missing secrets, and runs real commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from cardsvc.cli.main import build_app
from cardsvc.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"CARDSVC_DB_PASSWORD": "db-secret", "CARDSVC_KEY_PASSPHRASE": "key-secret"}


HSM_FILE = ROOT / "tools" / "docker" / "compose.hsm.yml"
HSM = {"CARDSVC_DB_PASSWORD": "db-secret", "CARDSVC_KEY_PASSPHRASE": "",
       "CARDSVC_PKCS11_DIR": "/srv/cardsvc/pkcs11", "CARDSVC_PKCS11_MODULE": "/opt/pkcs11/libvendor.so",
       "CARDSVC_PKCS11_TOKEN": "cardsvc", "CARDSVC_PKCS11_PIN": "token-pin"}
PKCS11_VARS = ("CARDSVC_PKCS11_MODULE", "CARDSVC_PKCS11_TOKEN", "CARDSVC_PKCS11_PIN")
APP_SERVICES = ("migrate", "api", "station")


def _compose(*args: str, env: dict[str, str], hsm: bool = False) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed (Debian package docker-compose; tools/dev.sh "
                    "installs it)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CARDSVC_", "SOFTHSM2_"))}
    files = ["-f", str(ROOT / "docker-compose.yml")] + (["-f", str(HSM_FILE)] if hsm else [])
    return subprocess.run([tool, *files, *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def _loaded(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return _loaded(_compose("config", env=SECRETS))


@pytest.fixture(scope="module")
def hsm_config() -> dict[str, Any]:
    return _loaded(_compose("config", env=HSM, hsm=True))


def test_services_and_healthchecks(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "station"}
    for name in ("postgres", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pgdata" in config["volumes"]


def test_production_settings_reach_the_app(config: dict[str, Any]) -> None:
    env = config["services"]["api"]["environment"]
    assert env["CARDSVC_ENV"] == "production"
    assert env["CARDSVC_KEY_PASSPHRASE"] == SECRETS["CARDSVC_KEY_PASSPHRASE"]
    assert env["CARDSVC_DATABASE_URL"].startswith("postgresql+psycopg://cardsvc:db-secret@postgres:5432/")
    assert env["CARDSVC_REDIS_URL"] == "redis://redis:6379/0"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_missing_secret_is_refused(missing: str) -> None:
    result = _compose("config", "-q", env={k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_pkcs11_is_optional_and_passed_through_empty(config: dict[str, Any]) -> None:
    """Without a token the three app services get empty PKCS#11 settings: the file store."""
    for name in APP_SERVICES:
        env = config["services"][name]["environment"]
        assert all(env[var] == "" for var in PKCS11_VARS), name
        settings = Settings(**_settings_of(env))
        assert not settings.uses_pkcs11


def test_hsm_variant_wires_the_token_into_every_app_service(hsm_config: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = hsm_config["services"][name]
        env = service["environment"]
        assert [env[var] for var in PKCS11_VARS] == [HSM[var] for var in PKCS11_VARS], name
        assert env["SOFTHSM2_CONF"] == "/opt/pkcs11/softhsm2.conf"
        assert f"{HSM['CARDSVC_PKCS11_DIR']}:/opt/pkcs11:rw" in service["volumes"], name
        settings = Settings(**_settings_of(env))  # production, empty passphrase: the token is enough
        assert settings.uses_pkcs11 and settings.pkcs11_token == "cardsvc"
    assert hsm_config["services"]["migrate"]["build"]["args"] == {"WITH_SOFTHSM2": "0"}


@pytest.mark.parametrize("missing", ["CARDSVC_PKCS11_DIR", *PKCS11_VARS])
def test_hsm_variant_refuses_a_missing_token_setting(missing: str) -> None:
    result = _compose("config", "-q", env={k: v for k, v in HSM.items() if k != missing}, hsm=True)
    assert result.returncode != 0
    assert missing in result.stderr


def test_empty_passphrase_without_a_token_is_refused_by_the_app(config: dict[str, Any]) -> None:
    """Compose cannot say "required unless a token is set": it refuses the passphrase UNSET; an
    empty one passes compose and the app refuses to start in production without a token."""
    empty = _loaded(_compose("config", env={**SECRETS, "CARDSVC_KEY_PASSPHRASE": ""}))
    env = empty["services"]["api"]["environment"]
    assert env["CARDSVC_KEY_PASSPHRASE"] == ""
    with pytest.raises(ValidationError, match="CARDSVC_KEY_PASSPHRASE must be set"):
        Settings(**_settings_of(env))


def _settings_of(env: dict[str, str]) -> dict[str, Any]:
    """A service's CARDSVC_* environment as Settings keyword arguments."""
    return {k.removeprefix("CARDSVC_").lower(): v for k, v in env.items() if k.startswith("CARDSVC_")}


def test_every_service_command_is_a_cardsvc_command(config: dict[str, Any]) -> None:
    import typer.main

    root = typer.main.get_command(build_app())
    known = set(root.commands)  # type: ignore[attr-defined]
    for name in ("migrate", "api", "station"):
        command = config["services"][name]["command"]
        assert command[0] in known, (name, command)


def test_key_store_volume_modes(config: dict[str, Any]) -> None:
    """The ceremony (migrate) and the API write the key store; the station only reads it and the
    host's pcscd socket is passed through."""
    def mounts(service: str) -> dict[str, bool]:
        found = {}
        for volume in config["services"][service]["volumes"]:
            entry = volume if isinstance(volume, dict) else {"target": volume.split(":")[1],
                                                             "read_only": volume.endswith(":ro")}
            found[entry["target"]] = bool(entry.get("read_only"))
        return found

    assert mounts("migrate")["/var/lib/cardsvc/keys"] is False
    assert mounts("api")["/var/lib/cardsvc/keys"] is False
    station = mounts("station")
    assert station["/var/lib/cardsvc/keys"] is True
    assert "/run/pcscd" in station


def test_image_builds_pyscard_and_ships_runtime_pieces() -> None:
    dockerfile = (ROOT / "tools" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    build, _, runtime = dockerfile.partition("\nFROM python:3.11-slim-bookworm\n")
    assert runtime, "expected a build stage and a runtime stage"
    for package in ("swig", "libpcsclite-dev", "gcc"):
        assert package in build, package
    for package in ("libpcsclite1", "fonts-droid-fallback", "fonts-dejavu-core"):
        assert package in runtime, package
    assert 'ENTRYPOINT ["cardsvc"]' in runtime
    assert "ARG WITH_SOFTHSM2=0" in runtime and "softhsm2" in runtime  # opt-in software token
