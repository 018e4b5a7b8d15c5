"""Print in-process host costs of both card families (medians; no assertions): personalisation
against the emulated card, the emulator's ``process()`` per APDU and per command, and ``prove``.

    .venv/bin/python tools/bench_emulator.py [--runs 200] [ntag424-dna fmcos-cpu]

No reader, no pcscd: the numbers are the host's own share. ``tools/bench_card.py`` measures the
whole pyscard -> pcscd -> vpcd path.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from cardsvc.drivers.base import CardDriver, MasterKeys, PersonalisationPlan
from cardsvc.drivers.fmcos import FmcosDriver
from cardsvc.drivers.ntag424 import Ntag424Driver
from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.direct import DirectLink
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.profiles import Profile, load_profile
from cardsvc.profiles.fmcos import FmcosConfig

PROFILES = Path(__file__).resolve().parents[1] / "firmware_profiles"
UIDS = {"ntag424": bytes.fromhex("04A1B2C3D4E5F6"), "fmcos": bytes.fromhex("A1B2C3D4")}


def counting_rng() -> Callable[[int], bytes]:
    counter = itertools.count()
    return lambda n: bytes(next(counter) & 0xFF for _ in range(n))


def make_plan(profile: Profile) -> PersonalisationPlan:
    cfg = profile.config
    roles = sorted({k.master_role for k in cfg.keys} if isinstance(cfg, FmcosConfig)
                   else {k.master for k in cfg.keys})
    keys = {role: bytes([i + 1]) * 8 + bytes([i + 0x41]) * 8 for i, role in enumerate(roles)}
    return PersonalisationPlan(card_number="31010100000042", credential=bytes(118),
                               master_keys=MasterKeys(1, keys, b"CN-310101-FTU"),
                               sun_base_url="https://verify.example.cn/t")


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def new_card(profile: Profile) -> VirtualCard:
    """A factory card whose RNG repeats, so a recorded trace replays exactly (same challenges)."""
    uid = UIDS[profile.family]
    if profile.family == "fmcos":
        return FmcosCard.blank(uid=uid, rng=counting_rng())
    return Ntag424Card.blank(uid=uid, rng=counting_rng())


def new_pair(profile: Profile) -> tuple[CardDriver, VirtualCard]:
    driver_class = FmcosDriver if profile.family == "fmcos" else Ntag424Driver
    return driver_class(profile, rng=counting_rng()), new_card(profile)


def personalisation(profile: Profile, plan: PersonalisationPlan, runs: int) -> list[bytes]:
    times: list[float] = []
    trace: list[bytes] = []
    for _ in range(runs):
        driver, card = new_pair(profile)
        conn = DirectLink(card, reader="bench", record=True)
        start = time.perf_counter()
        driver.personalise(conn, plan)
        times.append(time.perf_counter() - start)
        trace = conn.sent
    print(f"  personalisation: {len(trace)} APDUs, median {median_us(times) / 1000:.2f} ms host time")
    return trace


def per_command(profile: Profile, trace: list[bytes], runs: int) -> None:
    per_apdu: list[float] = []
    by_command: dict[str, list[float]] = {}
    for _ in range(runs):
        card = new_card(profile)
        card.power_on()
        for apdu in trace:
            start = time.perf_counter()
            card.process(apdu)
            elapsed = time.perf_counter() - start
            per_apdu.append(elapsed)
            by_command.setdefault(f"{apdu[0]:02X} {apdu[1]:02X}", []).append(elapsed)
    print(f"  emulator process(): median {median_us(per_apdu):.1f} us/APDU, "
          f"p95 {statistics.quantiles(per_apdu, n=20)[-1] * 1e6:.1f} us, max of medians "
          f"{max(median_us(s) for s in by_command.values()):.1f} us")
    for command, samples in sorted(by_command.items()):
        print(f"    CLA INS {command}: median {median_us(samples):.1f} us")


def proofs(profile: Profile, plan: PersonalisationPlan, runs: int) -> None:
    driver, card = new_pair(profile)
    driver.personalise(DirectLink(card, reader="bench", record=True), plan)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        driver.prove(DirectLink(card, reader="bench", record=True), bytes(8))
        times.append(time.perf_counter() - start)
    print(f"  prove: median {median_us(times):.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("profiles", nargs="*", default=["ntag424-dna", "fmcos-cpu"])
    args = parser.parse_args()
    for name in args.profiles:
        profile = load_profile(PROFILES / f"{name}.toml")
        plan = make_plan(profile)
        print(name)
        trace = personalisation(profile, plan, args.runs)
        per_command(profile, trace, args.runs)
        proofs(profile, plan, 10 * args.runs)


if __name__ == "__main__":
    main()
