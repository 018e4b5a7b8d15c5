"""Print host-side costs of the FMCOS emulator and driver (medians; no assertions).

    .venv/bin/python tools/bench_fmcos.py
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from cardsvc.drivers.base import MasterKeys, PersonalisationPlan
from cardsvc.drivers.fmcos import FmcosDriver
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.profiles import load_profile
from cardsvc.profiles.fmcos import FmcosConfig

PROFILE = Path(__file__).resolve().parents[1] / "firmware_profiles" / "fmcos-cpu.toml"
UID = bytes.fromhex("A1B2C3D4")


class Recorder:
    """A connection that records every APDU with the card's answer time."""

    def __init__(self, card: FmcosCard) -> None:
        self.card = card
        self.sent: list[bytes] = []
        card.power_on()

    @property
    def atr(self) -> bytes:
        return self.card.atr

    @property
    def reader(self) -> str:
        return "bench"

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.card.process(apdu)

    def close(self) -> None:
        pass


def rng() -> Callable[[int], bytes]:
    counter = itertools.count()
    return lambda n: bytes(next(counter) & 0xFF for _ in range(n))


def plan(cfg: FmcosConfig) -> PersonalisationPlan:
    keys = {k.master_role: bytes([i + 1]) * 16 for i, k in enumerate(cfg.keys)}
    return PersonalisationPlan(card_number="31010100000042", credential=bytes(118),
                               master_keys=MasterKeys(1, keys, b"CN-310101-FTU"))


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def main() -> None:
    profile = load_profile(PROFILE)
    if not isinstance(profile.config, FmcosConfig):
        raise SystemExit("not an FMCOS profile")
    the_plan = plan(profile.config)
    runs: list[float] = []
    per_apdu: list[float] = []
    for _ in range(200):
        driver = FmcosDriver(profile, rng=rng())
        conn = Recorder(FmcosCard.blank(uid=UID, rng=rng()))
        start = time.perf_counter()
        driver.personalise(conn, the_plan)
        runs.append(time.perf_counter() - start)
    trace = conn.sent
    by_command: dict[str, list[float]] = {}
    for _ in range(200):
        card = FmcosCard.blank(uid=UID, rng=rng())
        for apdu in trace:
            start = time.perf_counter()
            card.process(apdu)
            elapsed = time.perf_counter() - start
            per_apdu.append(elapsed)
            by_command.setdefault(f"{apdu[0]:02X} {apdu[1]:02X}", []).append(elapsed)
    print(f"personalisation: {len(trace)} APDUs, median {median_us(runs) / 1000:.2f} ms host time")
    print(f"emulator process(): median {median_us(per_apdu):.1f} us/APDU, "
          f"p95 {statistics.quantiles(per_apdu, n=20)[-1] * 1e6:.1f} us")
    for command, samples in sorted(by_command.items()):
        print(f"  CLA INS {command}: median {median_us(samples):.1f} us")
    card = FmcosCard.blank(uid=UID, rng=rng())
    driver = FmcosDriver(profile, rng=rng())
    driver.personalise(Recorder(card), the_plan)
    proofs = []
    for _ in range(2000):
        start = time.perf_counter()
        driver.prove(Recorder(card), bytes(8))
        proofs.append(time.perf_counter() - start)
    print(f"prove (uid + 2 selects + INTERNAL AUTHENTICATE): median {median_us(proofs):.1f} us")


if __name__ == "__main__":
    main()
