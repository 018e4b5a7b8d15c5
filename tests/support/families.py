"""Helpers shared by the card-family test suites (NTAG 424 DNA, FMCOS)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from cardsvc.drivers.base import CardDriver, PersonalisationPlan
from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.runtime import Faults
from cardsvc.errors import CardRemoved
from cardsvc.transport import pcsc
from tests.support.pcsc_stack import PcscStack


def counting_rng() -> Callable[[int], bytes]:
    """Deterministic 'random' bytes: 00 01 02 … (tests must be reproducible)."""
    counter = itertools.count()
    return lambda n: bytes(next(counter) & 0xFF for _ in range(n))


def pull_during_personalisation(stack: PcscStack, card: VirtualCard, driver: CardDriver,
                                plan: PersonalisationPlan, *, tear_after: int) -> None:
    """Personalise ``card`` in reader 0 until power is cut during APDU ``tear_after``, then put the
    card back on the reader with no more faults (the caller connects again)."""
    stack.emulate([[card]], faults=Faults(tear_after=tear_after))
    reader = stack.reader_names[0]
    conn = pcsc.connect(reader)
    with pytest.raises(CardRemoved):
        driver.personalise(conn, plan)
    conn.close()
    pcsc.wait_for_removal(reader, 2.0)
    slot = stack.slot(0)
    slot.faults = Faults()
    slot.insert(card)
    pcsc.wait_for_card(reader, 3.0)
