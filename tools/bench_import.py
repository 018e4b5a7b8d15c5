"""Member import benchmark: prints rows/s for XLSX and CSV into SQLite and PostgreSQL.

    .venv/bin/python tools/bench_import.py                 # 20k XLSX/CSV on both, 1M CSV on PostgreSQL
    .venv/bin/python tools/bench_import.py --large 0       # skip the 1,000,000-row run

Targets (issue 3): 20,000 XLSX rows end to end <= 10 s on SQLite; 1,000,000 CSV rows into
PostgreSQL <= 10 minutes. Lists come from tests/support/member_lists.py (about 6 % defective rows).
SQLite runs with synchronous=FULL; PostgreSQL is a private throwaway server with fsync on.
Generation time is not counted; each import is one `RegistryService.import_members` call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardsvc.registry.db import make_engine, session_factory, upgrade_to_head
from cardsvc.registry.importer import ImportReport
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.services import OrgService, RegistryService
from tests.support.member_lists import ORGS_CSV, generate, write_csv, write_xlsx
from tests.support.postgres import postgres_server

ORG_VALUES = ("G1", "G2", "第三工会")


def fresh_service(url: str, work: Path) -> RegistryService:
    engine = make_engine(url)
    upgrade_to_head(engine)
    orgs = work / "orgs.csv"
    orgs.write_text(ORGS_CSV, encoding="utf-8")
    OrgService(session_factory(engine)).import_orgs(orgs)
    cipher = PiiCipher({1: bytes(range(32))}, 1, bytes(range(100, 132)))
    return RegistryService(session_factory(engine), cipher, clock=lambda: dt.datetime.now(dt.UTC))


def timed(service: RegistryService, path: Path) -> tuple[float, ImportReport]:
    started = time.perf_counter()
    report = service.import_members(path)
    return time.perf_counter() - started, report


def line(label: str, seconds: float, report: ImportReport) -> None:
    rate = report.rows_read / seconds
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{label:<34} {report.rows_read:>9} rows {seconds:8.2f} s {rate:10.0f} rows/s "
          f"created {report.created:>8} rejected {report.rejected_rows:>6}  (max RSS {rss} MiB)", flush=True)


def make_lists(work: Path, rows: int) -> dict[str, Path]:
    data = list(generate(rows, orgs=ORG_VALUES))
    paths = {"xlsx": work / "members.xlsx", "csv": work / "members.csv"}
    write_xlsx(paths["xlsx"], data)
    write_csv(paths["csv"], data, encoding="gb18030")
    return paths


def run_small(work: Path, pg_url: str | None, rows: int) -> None:
    paths = make_lists(work, rows)
    for fmt, path in paths.items():
        db = work / f"bench-{fmt}.sqlite3"
        service = fresh_service(f"sqlite:///{db}", work)
        line(f"{fmt.upper()} -> SQLite", *timed(service, path))
        line(f"{fmt.upper()} -> SQLite (re-import, no-op)", *timed(service, path))
        if pg_url is not None:
            service = fresh_service(pg_url.replace("/postgres?", f"/bench_{fmt}?"), work)
            line(f"{fmt.upper()} -> PostgreSQL", *timed(service, path))


def run_large(work: Path, pg_url: str, rows: int) -> None:
    path = work / "large.csv"
    started = time.perf_counter()
    write_csv(path, generate(rows, orgs=ORG_VALUES, seed=1))
    print(f"(generated {rows} CSV rows in {time.perf_counter() - started:.0f} s, "
          f"{path.stat().st_size // 2**20} MiB)", flush=True)
    service = fresh_service(pg_url.replace("/postgres?", "/bench_large?"), work)
    line("CSV -> PostgreSQL (large)", *timed(service, path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the XLSX/CSV runs")
    parser.add_argument("--large", type=int, default=1_000_000,
                        help="rows in the PostgreSQL CSV run (0: skip)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cardsvc-bench-") as tmp:
        work = Path(tmp)
        if args.no_postgres:
            run_small(work, None, args.rows)
            return
        with postgres_server(durable=True) as server:
            for name in ("bench_xlsx", "bench_csv", "bench_large"):
                _create(server, name)
            run_small(work, server.url(), args.rows)
            if args.large:
                run_large(work, server.url(), args.large)


def _create(server: object, name: str) -> None:
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
