"""Settings, read from ``CARDSVC_*`` environment variables; built only by :func:`get_settings`.

Nothing here runs at import time: the API factory, the CLI and the tests each build their own
:class:`Settings` and pass it down.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cardsvc.errors import ConfigError

DEV_KEY_PASSPHRASE = "dev-only-passphrase-change-me"  # noqa: S105 - the refused default


class Environment(StrEnum):
    dev = "dev"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    """Everything cardsvc can be told from outside."""

    model_config = SettingsConfigDict(env_prefix="CARDSVC_", extra="ignore")

    env: Environment = Environment.dev
    data_dir: Path = Path("./var")
    database_url: str | None = None
    key_passphrase: SecretStr = SecretStr(DEV_KEY_PASSPHRASE)
    issuer: str = "DFTU"  # short: issuer + card number + profile code must fit a 128-byte credential
    profiles_dir: Path | None = None
    redis_url: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    rate_limit_burst: int = 120  # per API client: requests at once …
    rate_limit_per_second: float = 30.0  # … then this many per second on average
    login_rate_burst: int = 30  # staff sign-ins per source address at once (an office behind one NAT) …
    login_rate_per_second: float = 0.2  # … then one every 5 s on average
    apdu_trace: bool = False
    timezone: str = "Asia/Shanghai"  # IANA zone of the federation's days and months (statistics, "today")
    offline_checkin_max_days: int = 7  # an offline check-in synced later may be at most this old
    # PKCS#11 key store (an HSM, SoftHSM2 in tests); unset module = the encrypted file store
    pkcs11_module: Path | None = None
    pkcs11_token: str = ""
    pkcs11_pin: SecretStr = SecretStr("")

    @field_validator("pkcs11_module", mode="before")
    @classmethod
    def _empty_module_is_unset(cls, value: object) -> object:
        """``CARDSVC_PKCS11_MODULE=`` (e.g. compose's ``${VAR:-}``) means the file store."""
        return None if value == "" else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"CARDSVC_TIMEZONE={value!r} is not an IANA timezone name "
                             "(e.g. Asia/Shanghai, UTC)") from None
        return value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.pkcs11_module is not None:
            if not self.pkcs11_token or not self.pkcs11_pin.get_secret_value():
                raise ValueError("CARDSVC_PKCS11_TOKEN and CARDSVC_PKCS11_PIN must be set "
                                 "when CARDSVC_PKCS11_MODULE is")
        elif self.env is Environment.production:
            secret = self.key_passphrase.get_secret_value()
            if not secret or secret == DEV_KEY_PASSPHRASE:
                raise ValueError(
                    "CARDSVC_KEY_PASSPHRASE must be set to a real secret when CARDSVC_ENV=production"
                    " (or use a PKCS#11 token: CARDSVC_PKCS11_MODULE, _TOKEN, _PIN)"
                )
        return self

    @property
    def uses_pkcs11(self) -> bool:
        """Whether the key store is a PKCS#11 token rather than the encrypted file."""
        return self.pkcs11_module is not None

    @property
    def zone(self) -> ZoneInfo:
        """The timezone local days and months are counted in (``CARDSVC_TIMEZONE``)."""
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        """The database URL: ``CARDSVC_DATABASE_URL`` or SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cardsvc.sqlite3').resolve()}"

    @property
    def key_store_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def effective_profiles_dir(self) -> Path:
        """Firmware profiles: ``CARDSVC_PROFILES_DIR`` or the ones shipped with the package."""
        if self.profiles_dir is not None:
            return self.profiles_dir
        return Path(__file__).resolve().parent.parent / "firmware_profiles"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with keyword overrides (tests pass their own)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
