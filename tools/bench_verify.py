#!/usr/bin/env python3
"""Verification service benchmark: `cardsvc serve --workers 2` against a bare FastAPI hello.

    .venv/bin/python tools/bench_verify.py [--duration 8] [--connections 32] [--postgres]

One run: a fresh data directory (SQLite, file key store with issuer, bundle, card master and UID
index keys), members and issued NTAG 424 DNA cards, a partner client; then, on loopback only, a
bare FastAPI hello endpoint served the same way (uvicorn, 2 workers) and the real app. Each target
is loaded with `wrk` (`-t2 -c32 --latency`; install it with `apt-get install wrk`) or, without it,
a bounded asyncio/httpx generator. Printed: req/s, p50, p99, errors, and the ratios against hello.

Targets (issue 5): QR verify (auth + signature + status + audit write) ≥ 0.35 × hello with
p99 ≤ 25 ms; SUN verify (decrypt + CMAC + counter compare-and-set + audit write) ≥ 0.30 × hello.
Every SUN request carries a fresh counter (URLs are pre-computed and handed out per wrk thread).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.postgres for --postgres

from cardsvc.cardcrypto import sun
from cardsvc.config import Settings, get_settings
from cardsvc.credential import Algorithm, CredentialClaims, issue_credential, to_qr_text
from cardsvc.credential.keystore import open_key_store
from cardsvc.profiles import load_profiles
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Batch, Card, CardStatus, JournalState
from cardsvc.registry.db import engine_for, upgrade_to_head
from cardsvc.registry.keys import ensure_pii_keys
from cardsvc.registry.models import Member, Organisation, OrgKind
from cardsvc.verification.db import Database
from cardsvc.verification.keys import MASTER_PREFIX, UID_INDEX_SECRET, card_keys_from_store, master_roles
from cardsvc.verification.roles import Role
from cardsvc.verification.seed import seed_reference_data
from cardsvc.verification.store import DbClientStore
from cardsvc.verification.tokens import create_client
from tests.support.postgres import postgres_server

ISSUER = "SZGH"
PROFILE = "ntag424-dna"
CARDS = 200
HELLO_APP = '''
from fastapi import FastAPI

def hello_factory() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    return app
'''
WRK_LUA = '''
local counter, threads = 0, {}
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args)
  paths, method, body = {}, "%(method)s", %(body)s
  for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
  n, step, i = #paths, %(threads)d, id + 1
end
function request()
  local path = paths[((i - 1) %% n) + 1]
  i = i + step
  return wrk.format(method, path, {["Authorization"] = "Bearer %(token)s",
                                   ["Content-Type"] = "application/json"}, body)
end
'''


@dataclass(frozen=True)
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# --- data --------------------------------------------------------------------------------------


def _env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARDSVC_", "PROMETHEUS_"))}
    if database_url is not None:
        env["CARDSVC_DATABASE_URL"] = database_url
    env.update(CARDSVC_ENV="dev", CARDSVC_DATA_DIR=str(data_dir), CARDSVC_ISSUER=ISSUER,
               CARDSVC_LOG_LEVEL="WARNING", CARDSVC_RATE_LIMIT_BURST="1000000",
               CARDSVC_RATE_LIMIT_PER_SECOND="1000000")  # measure the service, not the limiter
    return env


def prepare(settings: Settings) -> tuple[str, list[str], list[str]]:
    """Keys, schema, seed data, cards; returns (partner token, QR texts, SUN paths)."""
    engine = engine_for(settings)
    upgrade_to_head(engine)
    store = open_key_store(settings)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    store.create_issuer_key(Algorithm.eddsa, not_before=now - dt.timedelta(days=1))
    store.create_bundle_key(Algorithm.eddsa, not_before=now - dt.timedelta(days=1))
    ensure_pii_keys(store)
    profiles = load_profiles(settings.effective_profiles_dir)
    store.ensure_secret(UID_INDEX_SECRET, 32)
    for role in master_roles(profiles.values()):
        store.ensure_secret(MASTER_PREFIX + role, 16)
    db = Database(engine)
    db.transact(seed_reference_data)
    keys = card_keys_from_store(store, profiles.values(), issuer=ISSUER)
    signer = store.issuer_signer(now=now)
    cards = [(f"2026{i:08d}", os.urandom(7)) for i in range(1, CARDS + 1)]
    credentials = [issue_credential(signer, CredentialClaims(
        issuer=ISSUER, card_number=n, issued_at=now - dt.timedelta(hours=1),
        expires_at=now + dt.timedelta(days=365), profile="n424", key_version=1)) for n, _ in cards]
    db.transact(lambda s: _insert_cards(s, cards, credentials, keys.uid_hash, now))
    token = asyncio.run(create_client(DbClientStore(db), label="bench", role=Role.partner,
                                      partner_base_id="base-beidaihe")).token
    config = profiles[PROFILE].config
    if not isinstance(config, Ntag424Config):
        raise SystemExit(f"profile {PROFILE} is not an NTAG 424 DNA profile")
    masters, si = keys.master(1), keys.system_identifier
    meta = config.card_key(config.sun.meta_read_key, masters, uid=b"", system_identifier=si)
    files = {uid: config.card_key(config.sun.file_read_key, masters, uid=uid, system_identifier=si)
             for _, uid in cards}
    sun_paths = [_sun_path(meta, files[uid], uid, counter) for counter in range(1, 400) for _, uid in cards]
    engine.dispose()
    return token, [to_qr_text(c) for c in credentials], sun_paths


def _insert_cards(session, cards, credentials, uid_hash, now):  # type: ignore[no-untyped-def]
    org = Organisation(code="D01", name="某区总工会", kind=OrgKind.district_federation)
    session.add(org)
    session.flush()
    batch = card_repo.add_batch(session, batch=Batch(label="bench", profile=PROFILE, key_version=1,
                                                     prefix="2026", year=2026, valid_days=365), member_ids=[])
    for (number, uid), credential in zip(cards, credentials, strict=True):
        member = Member(name="张三丰", org_id=org.id)
        session.add(member)
        session.flush()
        session.add(Card(card_number=number, batch_id=batch.id, member_id=member.id, profile=PROFILE,
                         key_version=1, state=JournalState.issued, status=CardStatus.active,
                         uid_hash=uid_hash(uid), credential=credential, issued_at=now,
                         expires_at=now + dt.timedelta(days=365)))
    session.flush()


def _sun_path(meta: bytes, file_key: bytes, uid: bytes, counter: int) -> str:
    picc = sun.encrypt_picc_data(meta, uid, counter, os.urandom(5))
    mac = sun.sdm_mac(file_key, uid, counter)
    return f"/v1/verify/sun?p={picc.hex().upper()}&m={mac.hex().upper()}"


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def hello_cmd(work: Path, port: int) -> list[str]:
    (work / "bench_hello.py").write_text(HELLO_APP)
    return [sys.executable, "-m", "uvicorn", "--factory", "bench_hello:hello_factory", "--app-dir", str(work),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning",
            "--no-server-header"]


# --- load --------------------------------------------------------------------------------------


def run_wrk(name: str, base: str, paths: list[str], *, method: str, body: str | None, token: str,
            work: Path, duration: int, connections: int) -> Result:
    paths_file = work / f"{name}.paths"
    paths_file.write_text("\n".join(paths) + "\n")
    script = work / f"{name}.lua"
    lua_body = "nil" if body is None else "[[" + body + "]]"
    script.write_text(WRK_LUA % {"method": method, "body": lua_body, "paths": paths_file, "threads": 2,
                                 "token": token})
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
                          base], capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    return Result(name, _number(r"Requests/sec:\s+([\d.]+)", out), _latency(out, "50"), _latency(out, "99"),
                  int(_number(r"Non-2xx or 3xx responses:\s+(\d+)", out, 0)))


def _number(pattern: str, text: str, default: float | None = None) -> float:
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise SystemExit(f"unexpected wrk output:\n{text}")
        return default
    return float(match[1])


def _latency(text: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"no {pct}% latency in wrk output:\n{text}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]
    return float(match[1]) * scale


async def _python_load(name: str, base: str, paths: list[str], method: str, body: str | None, token: str,
                       duration: int, connections: int) -> Result:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    end = time.monotonic() + duration

    async def worker(offset: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        i = offset
        while time.monotonic() < end:
            started = time.perf_counter()
            response = await client.request(method, paths[i % len(paths)], content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            errors += response.status_code >= 400
            i += connections

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(k, client) for k in range(connections)))
    cuts = statistics.quantiles(latencies, n=100)
    return Result(name, len(latencies) / duration, cuts[49] * 1000, cuts[98] * 1000, errors)


def load(name: str, base: str, paths: list[str], *, method: str = "GET", body: str | None = None,
         token: str = "", work: Path, duration: int, connections: int) -> Result:
    if shutil.which("wrk"):
        return run_wrk(name, base, paths, method=method, body=body, token=token, work=work,
                       duration=duration, connections=connections)
    return asyncio.run(_python_load(name, base, paths, method, body, token, duration, connections))


# --- main --------------------------------------------------------------------------------------


def report(results: list[Result], hello: Result) -> None:
    print(f"{'target':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>9}{'× hello':>10}")
    for r in results:
        ratio = r.rps / hello.rps
        print(f"{r.name:<12}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>9}{ratio:>10.2f}")
    qr = next(r for r in results if r.name == "verify_qr")
    sun_r = next(r for r in results if r.name == "verify_sun")
    print(f"targets: QR ≥ 0.35× hello and p99 ≤ 25 ms: {qr.rps / hello.rps:.2f}×, {qr.p99_ms:.1f} ms "
          f"[{'met' if qr.rps >= 0.35 * hello.rps and qr.p99_ms <= 25 else 'NOT met'}]; "
          f"SUN ≥ 0.30× hello: {sun_r.rps / hello.rps:.2f}× "
          f"[{'met' if sun_r.rps >= 0.30 * hello.rps else 'NOT met'}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per target (bounded: ≤ 60)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", action="store_true",
                        help="a throwaway PostgreSQL server (durable: fsync on) instead of SQLite")
    args = parser.parse_args()
    duration = max(1, min(args.duration, 60))
    work = Path(tempfile.mkdtemp(prefix="cardsvc-bench-verify-"))
    try:
        if args.postgres:
            with postgres_server(durable=True) as pg:
                run(work, duration, args.connections, pg.url(pg.create_database()))
        else:
            run(work, duration, args.connections, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, duration: int, connections: int, database_url: str | None) -> None:
    env = _env(work / "data", database_url)
    settings = get_settings(env="dev", data_dir=work / "data", issuer=ISSUER, database_url=database_url)
    token, qrs, sun_paths = prepare(settings)
    hello_port, app_port = free_port(), free_port()
    common = {"work": work, "duration": duration, "connections": connections}
    hello_proc = subprocess.Popen(hello_cmd(work, hello_port), env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    _wait(f"http://127.0.0.1:{hello_port}/hello", hello_proc)
    try:
        hello = load("hello", f"http://127.0.0.1:{hello_port}", ["/hello"], **common)  # type: ignore[arg-type]
    finally:
        stop(hello_proc)
    serve = [sys.executable, "-c", "from cardsvc.cli.main import run; run()", "serve",
             "--port", str(app_port), "--workers", "2"]
    app_proc = start(serve, env, app_port)
    base = f"http://127.0.0.1:{app_port}"
    try:
        qr = load("verify_qr", base, ["/v1/verify/qr"], method="POST", body=f'{{"qr": "{qrs[0]}"}}',
                  token=token, **common)  # type: ignore[arg-type]
        sun_r = load("verify_sun", base, sun_paths, token=token, **common)  # type: ignore[arg-type]
    finally:
        stop(app_proc)
    report([hello, qr, sun_r], hello)
    print(f"(loopback, {connections} connections, {duration} s per target, {os.cpu_count()} CPUs, "
          f"load generator: {'wrk' if shutil.which('wrk') else 'python/httpx'}; SUN URLs: {len(sun_paths)}; "
          f"database: {'PostgreSQL' if database_url else 'SQLite'})")


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("hello server exited")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("hello server did not start")


if __name__ == "__main__":
    main()
