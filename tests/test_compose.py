"""docker-compose.yml validates with the compose tool, refuses missing secrets, and runs real commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cardsvc.cli.main import build_app

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"CARDSVC_DB_PASSWORD": "db-secret", "CARDSVC_KEY_PASSPHRASE": "key-secret"}


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed (Debian package docker-compose; tools/dev.sh "
                    "installs it)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARDSVC_")}
    return subprocess.run([tool, "-f", str(ROOT / "docker-compose.yml"), *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = _compose("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


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
