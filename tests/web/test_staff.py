"""Staff accounts: argon2id hashes, lock-out, session expiry, form nonces, the schema, `cardsvc users`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from sqlalchemy import Engine, MetaData, text
from sqlmodel import SQLModel

from cardsvc.config import get_settings
from cardsvc.errors import Conflict, InvalidRecord
from cardsvc.registry import staff_models
from cardsvc.registry.db import engine_for, session_factory, upgrade_to_head
from cardsvc.registry.staff import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    LOCKOUT,
    LoginRefused,
    NewStaff,
    StaffAccounts,
    token_hash,
)
from tests.support.cli import Cli, in_process_cli

PASSWORD = "a long enough password"
TABLES = ("staff_user", "staff_session", "web_form_nonce")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = engine_for(get_settings(env="test", data_dir=tmp_path))
    upgrade_to_head(made)
    yield made
    made.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(engine: Engine, clock: Clock) -> StaffAccounts:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # fast tests, same code path
    made = StaffAccounts(session_factory(engine), hasher=cheap, clock=clock)
    made.create(NewStaff(username="clerk1", display_name="制卡员", role="clerk", password=PASSWORD))
    return made


def test_migration_matches_the_staff_models(engine: Engine) -> None:
    ours = MetaData()
    for name in TABLES:
        SQLModel.metadata.tables[name].to_metadata(ours)
    assert staff_models.StaffUser.__tablename__ in ours.tables
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), ours)
    assert [str(d) for d in diffs if any(t in str(d) for t in TABLES)] == []


def test_only_an_argon2id_hash_is_stored(accounts: StaffAccounts, engine: Engine) -> None:
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM staff_user")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_right_password_signs_in_wrong_one_is_refused(accounts: StaffAccounts) -> None:
    assert accounts.authenticate("clerk1", PASSWORD).role == "clerk"
    with pytest.raises(LoginRefused) as refused:
        accounts.authenticate("clerk1", "wrong password!")
    assert refused.value.reason == "bad_credentials"
    with pytest.raises(LoginRefused):
        accounts.authenticate("nobody", PASSWORD)


def test_five_failures_lock_the_account_for_fifteen_minutes(accounts: StaffAccounts, clock: Clock) -> None:
    for _ in range(5):
        with pytest.raises(LoginRefused):
            accounts.authenticate("clerk1", "wrong password!")
    with pytest.raises(LoginRefused) as refused:
        accounts.authenticate("clerk1", PASSWORD)
    assert refused.value.reason == "locked"
    assert accounts.list()[0].locked
    clock.now += LOCKOUT + dt.timedelta(seconds=1)
    assert accounts.authenticate("clerk1", PASSWORD).username == "clerk1"


def test_sessions_expire_when_idle_and_absolutely(accounts: StaffAccounts, clock: Clock) -> None:
    staff = accounts.authenticate("clerk1", PASSWORD)
    token = accounts.start_session(staff)
    clock.now += IDLE_TIMEOUT - dt.timedelta(minutes=1)
    assert accounts.resume(token) == staff
    clock.now += IDLE_TIMEOUT + dt.timedelta(seconds=1)
    with pytest.raises(LoginRefused) as refused:
        accounts.resume(token)
    assert refused.value.reason == "expired"
    busy = accounts.start_session(staff)
    for _ in range(int(ABSOLUTE_TIMEOUT / dt.timedelta(minutes=20)) + 1):
        clock.now += dt.timedelta(minutes=20)
        try:
            accounts.resume(busy)
        except LoginRefused:
            break
    else:
        pytest.fail("an active session outlived the absolute timeout")
    assert clock.now - dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC) > ABSOLUTE_TIMEOUT


def test_logout_disable_and_passwd_end_sessions(accounts: StaffAccounts, engine: Engine) -> None:
    staff = accounts.authenticate("clerk1", PASSWORD)
    first, second = accounts.start_session(staff), accounts.start_session(staff)
    with engine.connect() as conn:
        hashes = {row[0] for row in conn.execute(text("SELECT token_hash FROM staff_session"))}
    assert hashes == {token_hash(first), token_hash(second)}  # only hashes are stored
    accounts.end_session(first)
    with pytest.raises(LoginRefused):
        accounts.resume(first)
    accounts.set_password("clerk1", "another long password")
    with pytest.raises(LoginRefused):
        accounts.resume(second)
    accounts.disable("clerk1")
    with pytest.raises(LoginRefused) as refused:
        accounts.authenticate("clerk1", "another long password")
    assert refused.value.reason == "disabled"


def test_bad_new_users_are_refused(accounts: StaffAccounts) -> None:
    with pytest.raises(Conflict):
        accounts.create(NewStaff(username="clerk1", display_name="x", role="clerk", password=PASSWORD))
    with pytest.raises(InvalidRecord, match="password"):
        accounts.create(NewStaff(username="clerk2", display_name="x", role="clerk", password="short"))
    with pytest.raises(InvalidRecord, match="service_point_id"):
        accounts.create(NewStaff(username="sp9", display_name="x", role="service_point", password=PASSWORD))
    with pytest.raises(InvalidRecord, match="partner_base_id"):
        accounts.create(NewStaff(username="c3", display_name="x", role="clerk", password=PASSWORD,
                                 partner_base_id="base-1"))


def test_a_form_nonce_runs_its_work_once(accounts: StaffAccounts) -> None:
    staff = accounts.authenticate("clerk1", PASSWORD)
    runs: list[int] = []

    def work() -> str:
        runs.append(1)
        return f"/done/{len(runs)}"

    assert accounts.once(staff, "n-1", work) == ("/done/1", True)
    assert accounts.once(staff, "n-1", work) == ("/done/1", False)
    assert accounts.once(staff, "n-2", work) == ("/done/2", True)
    assert runs == [1, 1]
    with pytest.raises(InvalidRecord):
        accounts.once(staff, "", work)


def test_failed_work_leaves_the_nonce_free(accounts: StaffAccounts) -> None:
    staff = accounts.authenticate("clerk1", PASSWORD)

    def failing() -> str:
        raise Conflict("refused", reason="test")

    with pytest.raises(Conflict):
        accounts.once(staff, "n-3", failing)
    assert accounts.once(staff, "n-3", lambda: "/ok") == ("/ok", True)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    invoke = in_process_cli(tmp_path, monkeypatch, capsys)
    assert invoke("init")[0] == 0
    return invoke


def test_users_cli_create_list_disable_passwd(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSVC_NEW_PASSWORD", PASSWORD)
    code, out, _ = cli("users", "create", "sp1", "--role", "service_point", "--display-name", "服务站",
                       "--service-point", "sp-1")
    assert code == 0 and "sp1" in out
    assert cli("users", "create", "sp2", "--role", "service_point", "--display-name", "x")[0] == 9
    code, out, _ = cli("users", "list", "--json")
    assert code == 0 and '"bound_to": "sp-1"' in out and "argon2" not in out
    monkeypatch.setenv("CARDSVC_NEW_PASSWORD", "a newer long password")
    assert cli("users", "passwd", "sp1")[0] == 0
    assert cli("users", "disable", "sp1")[0] == 0
    code, out, _ = cli("users", "list", "--json")
    assert '"disabled": true' in out
    assert cli("users", "disable", "nobody")[0] == 9
