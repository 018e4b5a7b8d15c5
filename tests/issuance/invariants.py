"""The batch invariants every fault test checks, with verifiers independent of the issuance code:
the credential through the offline verifier over a signed trust bundle, the card proof through
cardcrypto's SUN check with keys derived from the profile."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping

from sqlmodel import select

from cardsvc.cardcrypto import fmcos as fc
from cardsvc.cardcrypto import sun
from cardsvc.credential import OfflineVerifier, TrustAnchor, VerificationStatus, build_trust_bundle
from cardsvc.credential.keystore import signing_key
from cardsvc.drivers.base import CardState
from cardsvc.emulator.base import VirtualCard
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.registry import card_repo
from cardsvc.registry.cards import BatchMember, Card, CardEvent, JournalState
from tests.issuance.support import ISSUER, NOW, Desk
from tests.support.cards import DirectConnection


def offline_verifier(desk: Desk, revoked: list[str] | None = None) -> OfflineVerifier:
    store = desk.store
    raw = build_trust_bundle(store.bundle_signer(now=NOW), store.issuer_keys(), revoked or [], 1, NOW,
                             NOW + dt.timedelta(days=7), issuer=ISSUER)
    anchor = TrustAnchor.from_key(signing_key(store.bundle_keys(), NOW))
    return OfflineVerifier.from_bundle_bytes(raw, anchor, clock=lambda: NOW + dt.timedelta(hours=1))


def check_sun(desk: Desk, card: VirtualCard) -> None:
    """A phone tap: the URL the card serves verifies with the production SDM keys."""
    cfg = desk.profile.config
    assert isinstance(cfg, Ntag424Config)
    url = desk.ctx.driver.prove(DirectConnection(card), b"").payload.decode("ascii")
    assert url.startswith("https://verify.example.cn/t?")
    keys = desk.ctx.master_keys
    message = sun.parse_sun_url(url, picc_param=cfg.sun.picc_param, mac_param=cfg.sun.mac_param)
    meta = cfg.card_key(cfg.sun.meta_read_key, keys.keys, uid=b"", system_identifier=keys.system_identifier)
    reading = sun.verify_sun(message, meta_read_key=meta, file_read_key=lambda uid: cfg.card_key(
        cfg.sun.file_read_key, keys.keys, uid=uid, system_identifier=keys.system_identifier))
    assert reading.uid == card.uid


def check_internal_auth(desk: Desk, card: VirtualCard) -> None:
    """A reader challenge: the card's INTERNAL AUTHENTICATE answer verifies with the production key."""
    cfg = desk.profile.config
    assert isinstance(cfg, FmcosConfig)
    suite = fc.suite(cfg.cipher_suite)
    challenge = bytes(range(suite.block_size))
    proof = desk.ctx.driver.prove(DirectConnection(card), challenge)
    slot = cfg.key("internal_auth")
    keys = desk.ctx.master_keys
    key = slot.derive(keys.keys[slot.master_role], uid=card.uid, aid=cfg.diversification_aid,
                      system_identifier=keys.system_identifier, cipher_suite=cfg.cipher_suite)
    fc.verify_internal_auth(suite, key, challenge, proof.payload)


def assert_invariants(desk: Desk, chips: Mapping[bytes, VirtualCard] | None = None) -> Counter[str]:
    """Numbers unique, ≤ 1 live card per member, issued cards verify, burned numbers stay burned,
    every batch member is issued or still pending. Returns the count of cards per state."""
    with desk.sessions() as session:
        cards = list(session.exec(select(Card)))
        members = {m.member_id for m in session.exec(select(BatchMember))}
        history = list(session.exec(select(CardEvent)))
    numbers = [c.card_number for c in cards]
    assert len(numbers) == len(set(numbers)), "a card number was used twice"
    live = Counter(c.member_id for c in cards if c.live)
    assert all(n == 1 for n in live.values()), f"more than one live card: {live}"
    chips_bound = [c.uid_hash for c in cards if c.uid_hash is not None]
    assert len(chips_bound) == len(set(chips_bound)), "a chip carries two cards"
    for card in cards:
        _check_card(desk, card, history, chips or {})
    issued_members = {c.member_id for c in cards if c.state == JournalState.issued}
    with desk.sessions() as session:
        pending = card_repo.pending_members(session, batch_id=desk.batch.id or 0)
    assert len(members - issued_members - {c.member_id for c in cards if c.live}) == pending
    return Counter(str(c.state) for c in cards)


def _check_card(desk: Desk, card: Card, history: list[CardEvent], chips: Mapping[bytes, VirtualCard]) -> None:
    arrows = [e.to_state for e in history if e.card_id == card.id and e.action == "journal"]
    assert arrows[0] == "reserved" and arrows[-1] == card.state, (card.card_number, arrows)
    if card.state in (JournalState.voided, JournalState.spoiled):
        assert not card.live
    if card.state != JournalState.issued:
        return
    assert card.credential is not None
    result = offline_verifier(desk).verify(card.credential)
    assert result.status is VerificationStatus.ok, result.reason
    assert result.card_number == card.card_number
    chip = next((c for uid, c in chips.items() if desk.ctx.uid_hash(uid) == card.uid_hash), None)
    if chip is not None:
        conn = DirectConnection(chip)
        assert desk.ctx.driver.status(conn, desk.ctx.master_keys).state is CardState.personalised
        readout = desk.ctx.driver.read_back(DirectConnection(chip), desk.ctx.master_keys)
        assert (readout.card_number, readout.credential) == (card.card_number, card.credential)
        if desk.profile.family == "ntag424":
            check_sun(desk, chip)
        else:
            check_internal_auth(desk, chip)
