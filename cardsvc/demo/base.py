"""What every demo step shares: names of the demo's things, options, errors, running ``cardsvc``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cardsvc.cli.main import run
from cardsvc.errors import CardsvcError

DEMO_ISSUER = "DFTU"  # short: a 12-digit card number and one category must fit the 128-byte file
DEMO_PROFILE = "ntag424-dna"
SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")
ENV_FILE = "demo.env"
DEMO_PROGRAMME = "demo-beidaihe"
DEMO_SERVICE_POINT = "sp-district-centre"
DEMO_PARTNER_BASE = "base-beidaihe"
DEMO_CLIENT_LABEL = "demo"
TAP_DROP = "tap"  # <data-dir>/tap: a card image copied here is put on the tap reader
TAP_ENV = "CARDSVC_TAP_PCSC"  # demo.env: the tap reader's PCSCLITE_CSOCK_NAME
DESCRIPTION = "``tools/dev.sh demo`` (``python -m cardsvc.demo``): the whole service on embedded defaults."


class DemoError(CardsvcError):
    """A demo step failed (names the step)."""

    code = "demo"


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    readers: int
    cards: int


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m cardsvc.demo", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    parser.add_argument("--readers", type=int, default=2, choices=range(1, 9), metavar="N",
                        help="virtual readers (default 2)")
    parser.add_argument("--cards", type=int, default=25, help="blank cards per reader (default 25)")
    args = parser.parse_args(argv)
    return Options(host=args.host, port=args.port, readers=args.readers, cards=max(1, args.cards))


def cli(*argv: str) -> None:
    """Run one ``cardsvc`` command in this process; a non-zero exit becomes :class:`DemoError`."""
    try:
        run(list(argv))
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise DemoError(f"`cardsvc {' '.join(argv)}` failed (exit {exc.code})") from None
