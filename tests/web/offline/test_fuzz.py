"""Hostile input into the browser modules: seeded random and mutated bytes and texts never throw
past the API, always come back NOK with a malformed-input reason, and agree with the Python
verifier; the CBOR decoder only ever fails with its own error and never touches prototypes."""

from __future__ import annotations

import random
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page

from cardsvc.credential import issue_credential, to_qr_text
from cardsvc.credential.base45 import ALPHABET

from .material import Case, Keys, claims, js_verdicts, python_verdict

SEED = 20261124
STRUCTURAL = {"cbor", "trailing_bytes", "cose_structure"}
MALFORMED = {"prefix", "base45", "too_large", "cbor", "trailing_bytes", "cose_structure", "claims"}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        action = rng.randrange(4)
        at = rng.randrange(len(data) + 1)
        if action == 0 and data:
            data[at % len(data)] = rng.randrange(256)
        elif action == 1:
            del data[at:]
        elif action == 2:
            data[at:at] = bytes([rng.randrange(256)])
        elif data:
            data[at % len(data)] ^= 1 << rng.randrange(8)
    return bytes(data)


def _inputs(rng: random.Random, credential: bytes) -> list[str | bytes]:
    inputs: list[str | bytes] = [rng.randbytes(rng.randrange(141)) for _ in range(300)]
    inputs += [b"\xd2\x84" + rng.randbytes(rng.randrange(126)) for _ in range(200)]
    inputs += [_mutate(rng, credential) for _ in range(500)]
    inputs += [to_qr_text(_mutate(rng, credential)) for _ in range(200)]
    inputs += ["UC1:" + "".join(rng.choices(ALPHABET, k=rng.randrange(200))) for _ in range(200)]
    inputs += ["".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(40))) for _ in range(50)]
    return inputs


def test_random_and_mutated_credentials_match_python(offline_page: Page, keys: Keys) -> None:
    rng = random.Random(SEED)
    credential = issue_credential(keys.ed, claims())
    bundle = keys.bundle()
    cases = [Case("good", item) for item in _inputs(rng, credential)]
    browser = js_verdicts(offline_page, {"good": bundle}, keys.anchors(), cases)
    python = [python_verdict(bundle, keys.anchors(), case.now, case.credential) for case in cases]
    threw = [b["threw"] for b in browser if "threw" in b]
    assert not threw, threw[:3]
    pairs = list(zip(cases, python, browser, strict=True))
    assert [p["status"] for _, p, _ in pairs] == [b["status"] for _, _, b in pairs]
    differ = [(c.credential, p["reason"], b["reason"]) for c, p, b in pairs if p != b]
    # Where they differ, it is the decoder's documented strictness (tags other than the outer COSE
    # tag, indefinite lengths → "cbor"), which cbor2 reports later as another structural reason.
    assert all({p, b} <= STRUCTURAL for _, p, b in differ), differ
    assert len(differ) <= len(cases) // 100, differ
    outcomes = {(b["status"], b["reason"]) for b in browser}
    assert all(status == "nok" for status, _ in outcomes - {("ok", None)})
    assert {reason for _, reason in outcomes} >= MALFORMED | {"signature"}


_DECODE_RANDOM = """async (inputs) => {
  const { decodeExact } = await import("/js/offline/cbor.js");
  const { VerifyError } = await import("/js/offline/errors.js");
  const { fromHex } = await import("/js/offline/bundle.js");
  const seen = { decoded: 0, refused: 0, other: [] };
  for (const hex of inputs) {
    try { decodeExact(fromHex(hex), { outerTag: true }); seen.decoded += 1; }
    catch (error) {
      const ours = error instanceof VerifyError && ["cbor", "trailing_bytes"].includes(error.reason);
      if (ours) seen.refused += 1;
      else seen.other.push(hex + ": " + String(error));
    }
  }
  return seen;
}"""


def test_decoder_fails_only_with_its_own_error(offline_page: Page) -> None:
    rng = random.Random(SEED + 1)
    heads = [b"\x9b" + b"\xff" * 8, b"\x5b\x7f" + b"\xff" * 7, b"\xbb" + b"\x00\xff" * 4, b"\x81" * 500,
             b"\xa1\x69__proto__\xa1\x69polluted\xf5", b"\x7f\xff", b"\x1c", b"\xf8\x01"]
    inputs = [h.hex() for h in heads]
    inputs += [rng.randbytes(rng.randrange(1, 4)).hex() for _ in range(1500)]
    inputs += [rng.randbytes(rng.randrange(64)).hex() for _ in range(1500)]
    seen = offline_page.evaluate(_DECODE_RANDOM, inputs)
    assert seen["other"] == []
    assert seen["decoded"] + seen["refused"] == len(inputs)
    assert seen["decoded"] > 100 and seen["refused"] > 100
    assert offline_page.evaluate("({}).polluted === undefined && Object.prototype.polluted === undefined")


cbor_values = st.recursive(
    st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.binary(max_size=40) | st.text(max_size=20)
    | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.integers(-100, 100), inner, max_size=5),
    max_leaves=20,
)

_ROUND_TRIP = """async (hex) => {
  const { decodeExact } = await import("/js/offline/cbor.js");
  const { fromHex, toHex } = await import("/js/offline/bundle.js");
  const plain = (v) => v instanceof Uint8Array ? { b: toHex(v) }
    : typeof v === "bigint" ? { i: v.toString() } : typeof v === "number" ? { i: String(v) }
    : Array.isArray(v) ? v.map(plain)
    : v instanceof Map ? { m: [...v].map(([k, x]) => [String(k), plain(x)]) } : v;
  return plain(decodeExact(fromHex(hex)));
}"""


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, bytes):
        return {"b": value.hex()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return {"m": [[str(k), _plain(v)] for k, v in value.items()]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=cbor_values)
def test_decoder_reads_what_cbor2_writes(offline_page: Page, value: Any) -> None:
    assert offline_page.evaluate(_ROUND_TRIP, cbor2.dumps(value).hex()) == _plain(value)
