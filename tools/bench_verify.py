#!/usr/bin/env python3
"""Verification service benchmark: `cardsvc serve --workers 2` against a bare FastAPI hello.

    .venv/bin/python tools/bench_verify.py [--duration 5] [--rounds 3] [--connections 32]
                                           [--postgres] [--fastapi-routes]

One run: a fresh data directory (SQLite, file key store with issuer, bundle, card master, UID
index and PII keys), members as the registry holds them (sealed ID number, a category) with issued
NTAG 424 DNA cards, a running programme at the partner's base, and a partner client — whose view
(masked name, ID last 4, eligibility and quota) is the one that reads most; then, on loopback only, a
bare FastAPI hello endpoint served the same way (uvicorn, 2 workers) and the real app
(`cardsvc serve --workers 2`), both up for the whole run. Each round loads hello, QR and SUN one
after the other (so every ratio compares numbers taken seconds apart on a machine whose load
swings); `--fastapi-routes` adds the same two routes served by their FastAPI handlers (the app
built with ``hot_path=False``, uvicorn, 2 workers) to each round. Each target is loaded with `wrk`
(`-t2 -c32 --latency`; install it with `apt-get install wrk`) or, without it, a bounded
asyncio/httpx generator. Printed: each round, then per target the median req/s, p50, p99 and the
median of the per-round ratios against hello.

Targets (issue 5): QR verify (auth + signature + status + audit write) ≥ 0.35 × hello with
p99 ≤ 25 ms; SUN verify (decrypt + CMAC + counter compare-and-set + audit write) ≥ 0.30 × hello.
Every SUN request carries a fresh counter (URLs are pre-computed; each load run gets its own slice,
handed out per wrk thread, so no run replays another's).
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import Session, select

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
from cardsvc.registry.keys import cipher_from_store, ensure_pii_keys
from cardsvc.registry.models import Category, Member, MemberCategory, Organisation, OrgKind
from cardsvc.registry.pii import PiiCipher
from cardsvc.verification.db import Database
from cardsvc.verification.keys import MASTER_PREFIX, UID_INDEX_SECRET, card_keys_from_store, master_roles
from cardsvc.verification.roles import Role
from cardsvc.verification.seed import seed_programme, seed_reference_data
from cardsvc.verification.store import DbClientStore
from cardsvc.verification.tokens import create_client
from tests.support.postgres import postgres_server

ISSUER = "SZGH"
PROFILE = "ntag424-dna"
CARDS = 200
WORKERS = 2
CATEGORY = "model_worker"  # every bench member has it; the partner base runs a programme for it
WARM_UP_S = 2  # per target, before the rounds: every worker has imported, connected and compiled
COUNTERS = 1000  # SUN URLs: CARDS x COUNTERS, sliced between the load runs
FASTAPI_APP = '''
from cardsvc.api.app import create_app
from cardsvc.api.services import db_services
from cardsvc.config import get_settings
from cardsvc.verification.ratelimit import RateLimit


def factory():
    settings = get_settings()
    limit = RateLimit(burst=settings.rate_limit_burst, per_second=settings.rate_limit_per_second)
    return create_app(settings, services=db_services(settings, rate_limit=limit), hot_path=False)
'''
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
    cipher = cipher_from_store(store)
    db.transact(lambda s: _insert_cards(s, cards, credentials, keys.uid_hash, cipher, now))
    db.transact(lambda s: seed_programme(  # the partner's view carries eligibility and quota for it
        s, code="bench-2026", base_code="base-beidaihe", name="2026年北戴河劳模疗休养",
        starts_on=(now - dt.timedelta(days=1)).date(), ends_on=(now + dt.timedelta(days=30)).date(),
        quota=100_000, categories=(CATEGORY,)))
    token = asyncio.run(create_client(DbClientStore(db), label="bench", role=Role.partner,
                                      partner_base_id="base-beidaihe")).token
    config = profiles[PROFILE].config
    if not isinstance(config, Ntag424Config):
        raise SystemExit(f"profile {PROFILE} is not an NTAG 424 DNA profile")
    masters, si = keys.master(1), keys.system_identifier
    meta = config.card_key(config.sun.meta_read_key, masters, uid=b"", system_identifier=si)
    files = {uid: config.card_key(config.sun.file_read_key, masters, uid=uid, system_identifier=si)
             for _, uid in cards}
    sun_paths = [_sun_path(meta, files[uid], uid, counter)
                 for counter in range(1, COUNTERS + 1) for _, uid in cards]
    engine.dispose()
    return token, [to_qr_text(c) for c in credentials], sun_paths


def _insert_cards(session: Session, cards: list[tuple[str, bytes]], credentials: list[bytes],
                  uid_hash: Callable[[bytes], bytes], cipher: PiiCipher, now: dt.datetime) -> None:
    """Members as the registry holds them (a sealed ID number, a category) with issued cards."""
    org = Organisation(code="D01", name="某区总工会", kind=OrgKind.district_federation)
    session.add(org)
    session.flush()
    batch = card_repo.add_batch(session, batch=Batch(label="bench", profile=PROFILE, key_version=1,
                                                     prefix="2026", year=2026, valid_days=365), member_ids=[])
    assert org.id is not None and batch.id is not None  # noqa: S101 - flushed rows have ids
    category = session.exec(select(Category).where(Category.code == CATEGORY)).one()
    for index, ((number, uid), credential) in enumerate(zip(cards, credentials, strict=True)):
        member = Member(name="张三丰", org_id=org.id)
        id_number = f"1101051949123{index:04d}X"
        member.id_sealed = cipher.seal(id_number, record=member.public_id, field="id_number")
        member.id_index = cipher.blind_index(id_number + member.public_id, field="id_number")
        session.add(member)
        session.flush()
        assert member.id is not None  # noqa: S101 - flushed
        session.add(MemberCategory(member_id=member.id, category_id=category.id))
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


def start(cmd: list[str], env: dict[str, str], port: int, *,
          health: str = "/healthz") -> subprocess.Popen[bytes]:
    """Start a server and wait until it answers and every worker listens on its own socket (a load
    started earlier would put all its connections on the first worker up)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120  # a loaded 2-core machine imports slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            httpx.get(f"http://127.0.0.1:{port}{health}", timeout=0.5)
            if listening_sockets(port) == WORKERS:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start {WORKERS} workers within 120 s: {' '.join(cmd[-8:])}")


def listening_sockets(port: int) -> int:
    """How many TCP sockets listen on ``port`` (``/proc/net/tcp``: state 0A is LISTEN)."""
    wanted = f":{port:04X}"
    with open("/proc/net/tcp") as table:
        return sum(1 for line in table.readlines()[1:]
                   if line.split()[1].endswith(wanted) and line.split()[3] == "0A")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def served_like_cardsvc(work: Path, module: str, source: str, factory: str, port: int) -> list[str]:
    """A command serving ``module:factory`` exactly as ``cardsvc serve --workers 2`` serves the app
    (:func:`cardsvc.cli.workers.serve_app`: one SO_REUSEPORT socket and uvicorn process per worker)."""
    (work / f"{module}.py").write_text(source)
    code = (f"import sys; sys.path.insert(0, {str(work)!r}); from cardsvc.cli.workers import serve_app; "
            f"serve_app({module + ':' + factory!r}, host='127.0.0.1', port={port}, workers={WORKERS}, "
            "log_level='warning')")
    return [sys.executable, "-c", code]


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
                  int(_number(r"Non-2xx or 3xx responses:\s+(\d+)", out, 0)) + _socket_errors(out))


def _socket_errors(text: str) -> int:
    """wrk's "Socket errors: connect A, read B, write C, timeout D" (absent when there were none)."""
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return sum(int(n) for n in match.groups()) if match else 0


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


def report(rounds: list[dict[str, Result]]) -> None:
    for number, results in enumerate(rounds, 1):
        hello = results["hello"].rps
        parts = [f"{name} {r.rps:.0f}/s p99 {r.p99_ms:.1f} ms ({r.rps / hello:.2f}×)"
                 for name, r in results.items()]
        print(f"round {number}: " + ", ".join(parts))
    print(f"{'target':<20}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>9}{'× hello':>10}")
    ratio: dict[str, float] = {}
    for name in rounds[0]:
        runs = [results[name] for results in rounds]
        ratio[name] = statistics.median(results[name].rps / results["hello"].rps for results in rounds)
        p50, p99 = statistics.median(r.p50_ms for r in runs), statistics.median(r.p99_ms for r in runs)
        print(f"{name:<20}{statistics.median(r.rps for r in runs):>10.0f}{p50:>10.2f}{p99:>10.2f}"
              f"{sum(r.errors for r in runs):>9}{ratio[name]:>10.2f}")
    qr_p99 = statistics.median(results["verify_qr"].p99_ms for results in rounds)
    print(f"targets (medians): QR ≥ 0.35× hello and p99 ≤ 25 ms: {ratio['verify_qr']:.2f}×, {qr_p99:.1f} ms "
          f"[{'met' if ratio['verify_qr'] >= 0.35 and qr_p99 <= 25 else 'NOT met'}]; "
          f"SUN ≥ 0.30× hello: {ratio['verify_sun']:.2f}× "
          f"[{'met' if ratio['verify_sun'] >= 0.30 else 'NOT met'}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per target and round (≤ 60)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of hello, QR, SUN (≤ 10)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", action="store_true",
                        help="a throwaway PostgreSQL server (durable: fsync on) instead of SQLite")
    parser.add_argument("--fastapi-routes", action="store_true",
                        help="also load QR and SUN served by their FastAPI handlers (hot_path=False)")
    args = parser.parse_args()
    plan = Plan(max(1, min(args.duration, 60)), max(1, min(args.rounds, 10)), args.connections,
                args.fastapi_routes)
    work = Path(tempfile.mkdtemp(prefix="cardsvc-bench-verify-"))
    try:
        if args.postgres:
            with postgres_server(durable=True) as pg:
                run(work, plan, pg.url(pg.create_database()))
        else:
            run(work, plan, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class Plan:
    duration: int
    rounds: int
    connections: int
    fastapi_routes: bool


def run(work: Path, plan: Plan, database_url: str | None) -> None:
    env = _env(work / "data", database_url)
    settings = get_settings(env="dev", data_dir=work / "data", issuer=ISSUER, database_url=database_url)
    token, qrs, sun_paths = prepare(settings)
    ports = {"hello": free_port(), "app": free_port(), "fastapi": free_port()}
    procs = [start(served_like_cardsvc(work, "bench_hello", HELLO_APP, "hello_factory", ports["hello"]), env,
                   ports["hello"], health="/hello"),
             start([sys.executable, "-c", "from cardsvc.cli.main import run; run()", "serve",
                    "--port", str(ports["app"]), "--workers", str(WORKERS)], env, ports["app"])]
    if plan.fastapi_routes:
        routes_cmd = served_like_cardsvc(work, "bench_fastapi_routes", FASTAPI_APP, "factory",
                                         ports["fastapi"])
        procs.append(start(routes_cmd, env, ports["fastapi"]))
    targets = [("hello", "hello", "GET"), ("verify_qr", "app", "POST"), ("verify_sun", "app", "GET")]
    if plan.fastapi_routes:
        targets += [("verify_qr_fastapi", "fastapi", "POST"), ("verify_sun_fastapi", "fastapi", "GET")]
    suns = iter(_slices(sun_paths, (plan.rounds + 1) * sum("sun" in name for name, _, _ in targets)))
    common = {"work": work, "connections": plan.connections, "token": token}

    def one_round(duration: int) -> dict[str, Result]:
        results: dict[str, Result] = {}
        for name, server, method in targets:
            base = f"http://127.0.0.1:{ports[server]}"
            paths = ["/hello"] if name == "hello" else ["/v1/verify/qr"] if "qr" in name else next(suns)
            body = f'{{"qr": "{qrs[0]}"}}' if "qr" in name else None
            results[name] = load(name, base, paths, method=method, body=body, duration=duration,
                                 **common)  # type: ignore[arg-type]
        return results

    try:
        one_round(WARM_UP_S)  # not reported
        rounds = [one_round(plan.duration) for _ in range(plan.rounds)]
    finally:
        for proc in procs:
            stop(proc)
    report(rounds)
    print(f"(loopback, {plan.connections} connections, {plan.rounds} rounds × {plan.duration} s per target, "
          f"{os.cpu_count()} CPUs, load generator: {'wrk' if shutil.which('wrk') else 'python/httpx'}; "
          f"SUN URLs: {len(sun_paths)}; database: {'PostgreSQL' if database_url else 'SQLite'})")


def _slices(paths: list[str], count: int) -> list[list[str]]:
    size = len(paths) // count
    return [paths[i * size : (i + 1) * size] for i in range(count)]


if __name__ == "__main__":
    main()
