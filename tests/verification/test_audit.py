"""The hash-chained audit log: RFC 6962 hashing, chain verification, personal-data refusal."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
from datetime import UTC, datetime, timedelta

import cbor2
import pytest

from cardsvc.errors import AuditIntegrityError, InvalidRecord
from cardsvc.verification.audit import (
    EMPTY_TREE_HEAD,
    GENESIS_HASH,
    AuditEvent,
    AuditRow,
    InMemoryAuditSink,
    Outcome,
    _micros,
    canonical_bytes,
    chain_row,
    checkpoint,
    leaf_hash,
    node_hash,
    row_leaf_hash,
    tree_head,
    verify_chain,
)

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)

# RFC 6962 reference tree: leaf inputs and the root for every size 0..8, from
# transparency-dev/merkle : testonly/constants.go (LeafInputs / RootHashes), the same values as
# google/certificate-transparency's merkle_tree_test.cc.
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def event(i: int = 0, **changes: object) -> AuditEvent:
    base = AuditEvent(event_type="verify.qr", actor="0a1b2c3d4e5f", subject=f"2026{i:06d}",
                      outcome=Outcome.ok, reason="valid", timestamp=T0 + timedelta(seconds=i))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def build_log(n: int) -> list[AuditRow]:
    rows: list[AuditRow] = []
    for i in range(n):
        rows.append(chain_row(rows[-1] if rows else None, event(i)))
    return rows


@pytest.mark.parametrize("size", range(9))
def test_tree_head_matches_rfc6962_reference_roots(size: int) -> None:
    leaves = [leaf_hash(bytes.fromhex(x)) for x in CT_LEAVES[:size]]
    assert tree_head(leaves).hex() == CT_ROOTS[size]


def test_empty_tree_head_is_sha256_of_nothing() -> None:
    assert EMPTY_TREE_HEAD.hex() == CT_ROOTS[0]


def test_chain_links_use_node_prefix() -> None:
    rows = build_log(3)
    assert rows[0].prev_hash == GENESIS_HASH
    for prev, row in itertools.pairwise(rows):
        assert row.prev_hash == prev.row_hash
        assert row.row_hash == node_hash(prev.row_hash, row_leaf_hash(row))
    assert [r.seq for r in rows] == [0, 1, 2]


def test_intact_chain_verifies() -> None:
    rows = build_log(20)
    verify_chain(rows)  # raises on failure
    verify_chain(rows[10:], start_hash=rows[9].row_hash, start_seq=10)


@pytest.mark.parametrize("bad", [0, 7, 19])
def test_tampered_content_names_that_row(bad: int) -> None:
    rows = build_log(20)
    rows[bad] = dataclasses.replace(rows[bad], event=event(bad, outcome=Outcome.nok))
    with pytest.raises(AuditIntegrityError) as info:
        verify_chain(rows)
    assert info.value.index == bad
    assert f"audit row {bad}" in str(info.value)


def test_rehashed_row_breaks_the_next_link() -> None:
    rows = build_log(10)
    forged = chain_row(rows[3], dataclasses.replace(event(4), reason="forged"))
    rows[4] = forged  # self-consistent, but row 5 still points at the original row 4
    with pytest.raises(AuditIntegrityError) as info:
        verify_chain(rows)
    assert info.value.index == 5


def test_dropped_or_reordered_rows_fail() -> None:
    rows = build_log(6)
    with pytest.raises(AuditIntegrityError) as dropped:
        verify_chain(rows[:2] + rows[3:])
    assert dropped.value.index == 2
    with pytest.raises(AuditIntegrityError) as swapped:
        verify_chain([rows[1], rows[0], *rows[2:]])
    assert swapped.value.index == 0


def test_wrong_start_hash_fails_at_first_row() -> None:
    rows = build_log(4)
    with pytest.raises(AuditIntegrityError) as info:
        verify_chain(rows[2:], start_hash=GENESIS_HASH, start_seq=2)
    assert info.value.index == 0


def test_checkpoint_covers_all_leaves() -> None:
    rows = build_log(5)
    cp = checkpoint(rows)
    assert cp.size == 5 and cp.last_hash == rows[-1].row_hash
    assert cp.tree_head == tree_head([row_leaf_hash(r) for r in rows])
    assert checkpoint([]).tree_head == EMPTY_TREE_HEAD


def test_leaf_encoding_is_deterministic_and_sensitive() -> None:
    a, b = chain_row(None, event(1)), chain_row(None, event(1))
    assert a.row_hash == b.row_hash
    later = chain_row(None, event(1, timestamp=T0 + timedelta(seconds=1, microseconds=1)))
    assert later.row_hash != a.row_hash


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "11010519491231002X"),  # citizen ID shape (GB 11643 sample)
        ("subject", "13800138000"),  # mobile phone shape
        ("actor", "id:110105194912310021"),
        ("subject", "张三"),
        ("subject", "x" * 65),
        ("event_type", "Verify QR"),
        ("reason", "Bad Reason"),
    ],
)
def test_personal_or_malformed_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        event(**{field: value})
    assert info.value.field == field


def test_naive_timestamp_refused() -> None:
    with pytest.raises(InvalidRecord):
        event(timestamp=datetime(2026, 1, 1))  # naive on purpose


def test_card_numbers_and_hex_ids_are_accepted() -> None:
    ok = event(subject="m:3f9a13800138000c", actor="cli:operator")
    assert ok.subject.startswith("m:")


def test_in_memory_sink_appends_a_verifiable_chain() -> None:
    sink = InMemoryAuditSink()

    async def run() -> list[AuditRow]:
        await asyncio.gather(*(sink.append(event(i)) for i in range(50)))
        return list(await sink.rows())

    rows = asyncio.run(run())
    assert len(rows) == 50
    verify_chain(rows)


def _unchecked_event(**fields: object) -> AuditEvent:
    """An event without AuditEvent's validation (lengths and characters a stored row may hold)."""
    event = object.__new__(AuditEvent)
    for name, value in fields.items():
        object.__setattr__(event, name, value)
    return event


def test_canonical_bytes_equal_cbor2_canonical_encoding() -> None:
    """The hand-written encoding is byte for byte cbor2's deterministic one (old rows keep their hashes)."""
    rng = random.Random(8949)
    texts = ["", "a", "x" * 23, "x" * 24, "y" * 255, "z" * 256, "张三丰", "verify.qr", "é" * 40]
    numbers = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**63]
    moments = [datetime(1970, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
               datetime(2026, 11, 24, 8, 0, 0, 123_456, tzinfo=UTC), datetime(1900, 1, 1, tzinfo=UTC)]
    for _ in range(2000):
        moment = rng.choice(moments) + timedelta(microseconds=rng.randrange(10**12))
        event = _unchecked_event(event_type=rng.choice(texts), actor=rng.choice(texts),
                                 subject=rng.choice(texts), outcome=rng.choice(list(Outcome)),
                                 reason=rng.choice(texts), timestamp=moment)
        seq = rng.choice(numbers)
        expected = cbor2.dumps({"seq": seq, "type": event.event_type, "actor": event.actor,
                                "subject": event.subject, "outcome": event.outcome.value,
                                "reason": event.reason, "ts": _micros(event.timestamp)}, canonical=True)
        assert canonical_bytes(seq, event) == expected
