"""`batch recover`: resolve every card the journal left in a middle state, by reading the card.

1. reservations still held by a station that died are voided (numbers burned; the member gets a new
   reservation on the next run). There is no liveness record, so the caller names the stopped
   station (``station``: a name, or a host covering its ``host:reader`` names); ``None`` means every
   station — the caller asserts that all are stopped (the CLI asks for ``--all-stations``);
2. ``verified`` cards were fully checked before the crash: only the last arrow is missing;
3. ``writing``/``written`` cards are resolved by presenting them: the station recognises the chip
   by its keyed UID hash and resumes (personalisation is resumable, keys change last), verifies and
   issues — or records the card spoiled when it cannot be brought to a good state;
4. cards that cannot be presented (lost, destroyed) are recorded spoiled only on request
   (``abandon``; limited to ``station``'s cards like step 1). No row is ever deleted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from cardsvc.issuance.journal import Journal
from cardsvc.issuance.station import CardSource, EventSink, Station, Worker
from cardsvc.issuance.workflow import CardOutcome, CardWorkflow
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Batch, Card, JournalState
from cardsvc.registry.db import SessionFactory

ABANDON_REASON = "not presented at recovery (declared lost or destroyed)"


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    voided: tuple[str, ...]
    finished: tuple[str, ...]
    outcomes: tuple[CardOutcome, ...]
    abandoned: tuple[str, ...]
    unresolved: tuple[str, ...]


@dataclass
class Recovery:
    workflow: CardWorkflow
    sessions: SessionFactory
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def journal(self) -> Journal:
        return self.workflow.journal

    @property
    def batch(self) -> Batch:
        return self.workflow.ctx.batch

    def run(self, sources: Sequence[CardSource], emit: EventSink, *, station: str | None = None,
            abandon_missing: bool = False) -> RecoveryReport:
        voided = self.void_reservations(station)
        finished = self.finish_verified()
        outcomes: list[CardOutcome] = []
        if self.unresolved() and sources:
            workers = [Worker(s, self.workflow, self.journal, emit, self.stop, recover_only=True,
                              until=lambda: not self.unresolved()) for s in sources]
            outcomes = Station(workers, self.stop).run()
        abandoned = self.abandon(ABANDON_REASON, station) if abandon_missing else []
        return RecoveryReport(tuple(voided), tuple(finished), tuple(outcomes), tuple(abandoned),
                              tuple(self.unresolved()))

    def _cards(self, states: Sequence[JournalState]) -> list[Card]:
        with self.sessions() as session:
            return card_repo.cards_in_states(session, batch_id=self.batch.id or 0, states=states)

    def void_reservations(self, station: str | None = None) -> list[str]:
        """Reservations still held by stopped stations (``station``'s; all when ``None``) are voided —
        their numbers burned."""
        held = [c for c in self._cards([JournalState.reserved])
                if c.station is not None and held_by(c, station)]
        for card in held:
            self.journal.void(card, "held by a station that stopped without releasing it")
        return [c.card_number for c in held]

    def finish_verified(self) -> list[str]:
        cards = self._cards([JournalState.verified])
        for card in cards:
            self.journal.issued(card)
        return [c.card_number for c in cards]

    def abandon(self, reason: str, station: str | None = None) -> list[str]:
        """Unfinished cards of ``station`` (all when ``None``) that were not presented → spoiled."""
        cards = [c for c in self._cards([JournalState.writing, JournalState.written]) if held_by(c, station)]
        for card in cards:
            self.journal.spoil(card, reason)
        return [c.card_number for c in cards]

    def unresolved(self) -> list[str]:
        return [c.card_number for c in self._cards([JournalState.writing, JournalState.written])]


def held_by(card: Card, station: str | None) -> bool:
    """``card`` belongs to ``station``: its exact name, or a host naming all its ``host:reader`` s."""
    if station is None:
        return True
    return card.station is not None and (card.station == station or card.station.startswith(station + ":"))
