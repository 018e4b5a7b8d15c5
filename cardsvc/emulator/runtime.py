"""Emulator runtime: one thread per virtual reader, a slot holding the current card, fault injection.

A :class:`Slot` serves one vpcd reader port. Inserting a card connects to the port; removing it
closes the socket (pcscd sees the card leave at its next presence poll). Each slot has a queue of
cards; the first is inserted when the slot starts.

Feeding (``feed=True``): once the host has *finished* with the current card, the slot takes it away
and inserts the next queued card; after the last one the reader stays empty. "Finished" means the
host powered the card off (vpcd control 0) after at least one APDU since the last power-on. pcscd
powers a card off on ``SCardDisconnect(…, SCARD_UNPOWER_CARD)``, on ``SCardReconnect`` with
unpower, and by itself a few seconds after the last handle is closed with ``SCARD_LEAVE_CARD`` — so
every host that uses the card and lets go finishes it; a host that merely polls the ATR does not.

Faults (per card, counted from insertion): ``tear_after=K`` runs K APDUs normally, then calls
``card.tear(apdu)`` for the next one and removes the card without answering; ``mute_after=K``
answers K APDUs, then answers nothing at all (not even pcscd's ATR polls) until removed.

``on_removed(slot, card, number)`` runs whenever a card leaves a slot (fed out, torn, removed,
shutdown) — the CLI saves its image there.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.vpcd import DEFAULT_HOST, Control, LinkClosed, VpcdLink

_log = logging.getLogger(__name__)

_RETRY_CONNECT_S = 0.2


@dataclass(frozen=True, slots=True)
class Faults:
    tear_after: int | None = None
    mute_after: int | None = None


class Outcome(StrEnum):
    finished = "finished"  # host powered the card off after using it (feed mode only)
    torn = "torn"
    removed = "removed"  # remove()/stop() from the controlling side
    reader_closed = "reader_closed"  # pcscd closed the link (pcscd stopped)


RemovedCallback = Callable[["Slot", VirtualCard, int], None]


class Slot:
    """One virtual reader (vpcd port) and the card in it."""

    def __init__(self, index: int, port: int, *, cards: Iterable[VirtualCard] = (),
                 feed: bool = False, faults: Faults | None = None, host: str = DEFAULT_HOST,
                 on_removed: RemovedCallback | None = None) -> None:
        self.index = index
        self.port = port
        self.feed = feed
        self.faults = faults or Faults()
        self.host = host
        self.on_removed = on_removed
        self.apdus = 0  # total APDUs answered, all cards
        self.cards_served = 0
        self._queue: collections.deque[VirtualCard] = collections.deque(cards)
        self._changed = threading.Condition()
        self._card: VirtualCard | None = None
        self._link: VpcdLink | None = None
        self._remove_requested = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"vpcd-slot-{index}", daemon=True)

    # --- controlling side --------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def card(self) -> VirtualCard | None:
        return self._card

    @property
    def pending(self) -> int:
        return len(self._queue)

    def insert(self, card: VirtualCard) -> None:
        """Put ``card`` on the reader next (after the current card, if any, is removed)."""
        with self._changed:
            self._queue.appendleft(card)
            self._changed.notify_all()

    def remove(self) -> VirtualCard | None:
        """Take the current card off the reader now (the queue is not advanced)."""
        with self._changed:
            card, link = self._card, self._link
            if card is None:
                return None
            self._remove_requested = True
        if link is not None:
            link.shutdown()
        self.wait_for(lambda: self._card is not card, timeout_s=5.0)
        return card

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._changed:
            self._stopping = True
            link = self._link
            self._changed.notify_all()
        if link is not None:
            link.shutdown()
        self._thread.join(timeout_s)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` holds (re-checked whenever the slot changes)."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout_s)

    def wait_empty(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self._card is None and not self._queue, timeout_s)

    # --- slot thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while (card := self._next_card()) is not None:
            link = self._connect()
            if link is None:
                self._queue.appendleft(card)
                break
            outcome = self._serve_card(card, link)
            self._finish(card, link, outcome)

    def _next_card(self) -> VirtualCard | None:
        with self._changed:
            self._changed.wait_for(lambda: self._stopping or bool(self._queue))
            if self._stopping:
                return None
            return self._queue.popleft()

    def _connect(self) -> VpcdLink | None:
        warned = False
        while not self._stopping:
            try:
                return VpcdLink.connect(self.port, self.host)
            except OSError as exc:
                if not warned:
                    _log.warning("reader %d: vpcd port %d not reachable (%s); retrying", self.index,
                                 self.port, exc.strerror or exc)
                    warned = True
                time.sleep(_RETRY_CONNECT_S)
        return None

    def _serve_card(self, card: VirtualCard, link: VpcdLink) -> Outcome:
        with self._changed:
            self._card, self._link, self._remove_requested = card, link, False
            self.cards_served += 1
            self._changed.notify_all()
        _log.info("reader %d: card %s inserted", self.index, card.uid.hex().upper())
        try:
            return self._serve(card, link)
        except LinkClosed:
            return Outcome.removed if self._remove_requested or self._stopping else Outcome.reader_closed

    def _serve(self, card: VirtualCard, link: VpcdLink) -> Outcome:
        """The per-APDU loop: keep it lean. Faults are read per APDU, so they apply live."""
        count = used_since_power = 0
        muted = False
        card.power_on()
        while True:
            message = link.receive()
            apdu = message.apdu
            if apdu:
                faults = self.faults
                if count == faults.tear_after:
                    card.tear(apdu)
                    return Outcome.torn
                muted = muted or count == faults.mute_after
                if muted:
                    continue
                response = card.process(apdu)
                count += 1
                used_since_power += 1
                self.apdus += 1
                link.send(response)
            elif message.control is Control.atr:
                if not muted:
                    link.send(card.atr)
            elif message.control is Control.power_off:
                if used_since_power and self.feed:
                    return Outcome.finished
                used_since_power = 0
            else:  # power on, reset
                card.power_on()
                used_since_power = 0

    def _finish(self, card: VirtualCard, link: VpcdLink, outcome: Outcome) -> None:
        link.close()
        number = self.cards_served
        _log.info("reader %d: card %s out (%s)", self.index, card.uid.hex().upper(), outcome.value)
        if self.on_removed is not None:
            try:
                self.on_removed(self, card, number)
            except Exception:
                _log.exception("reader %d: on_removed failed for card %d", self.index, number)
        with self._changed:
            if outcome is Outcome.reader_closed and not self._stopping:
                self._queue.appendleft(card)  # pcscd went away: keep the card for when it is back
            self._card = self._link = None
            self._changed.notify_all()
        if outcome is Outcome.torn or (outcome is Outcome.reader_closed and not self._stopping):
            time.sleep(_RETRY_CONNECT_S)


class Emulator:
    """A set of slots on consecutive vpcd ports, started and stopped together."""

    def __init__(self, slots: list[Slot]) -> None:
        self.slots = slots

    def start(self) -> Emulator:
        for slot in self.slots:
            slot.start()
        return self

    def stop(self) -> None:
        for slot in self.slots:
            slot.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def apdus(self) -> int:
        return sum(slot.apdus for slot in self.slots)
