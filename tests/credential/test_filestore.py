"""Encrypted file key store: secrets, key life cycle, passphrase handling, at-rest and atomic writes."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest

from cardsvc.config import DEV_KEY_PASSPHRASE, get_settings
from cardsvc.credential import (
    Algorithm,
    KeyState,
    OfflineVerifier,
    SoftwareSigner,
    TrustAnchor,
    TrustBundle,
    VerificationStatus,
    build_trust_bundle,
    issue_credential,
    open_key_store,
)
from cardsvc.credential.filestore import FileKeyStore
from cardsvc.errors import KeyStoreError
from tests.support.credentials import NOW, make_claims

FAST = 2**10  # scrypt cost for tests; the default (2**15) is exercised once below


@pytest.fixture
def store(tmp_path: Path) -> FileKeyStore:
    return FileKeyStore(tmp_path / "keys", "correct horse", scrypt_n=FAST)


def test_named_secrets_are_versioned(store: FileKeyStore) -> None:
    assert store.secret_versions("card-master/app") == []
    assert store.ensure_secret("card-master/app", 16) == 1
    assert store.ensure_secret("card-master/app", 16) == 1  # idempotent
    assert store.create_secret_version("card-master/app", 16) == 2
    version, latest = store.secret("card-master/app")
    assert version == 2 and len(latest) == 16
    assert store.secret("card-master/app", 1)[1] != latest
    assert store.secret_versions("card-master/app") == [1, 2]
    assert store.ensure_secret("pii/data", 32) == 1 and len(store.secret("pii/data")[1]) == 32


def test_secret_errors(store: FileKeyStore) -> None:
    with pytest.raises(KeyStoreError, match="no secret"):
        store.secret("pii/index")
    store.ensure_secret("pii/index", 32)
    with pytest.raises(KeyStoreError, match="no version 7"):
        store.secret("pii/index", 7)
    for name, size in (("", 16), ("x", 0), ("x", 65), ("bad\nname", 16)):
        with pytest.raises(KeyStoreError):
            store.ensure_secret(name, size)


def test_secrets_persist_across_instances(store: FileKeyStore) -> None:
    store.ensure_secret("pii/data", 32)
    again = FileKeyStore(store.path.parent, "correct horse")
    assert again.secret("pii/data") == store.secret("pii/data")


def test_file_is_encrypted_private_and_written_atomically(store: FileKeyStore) -> None:
    store.ensure_secret("card-master/app", 16)
    store.create_issuer_key(Algorithm.eddsa, not_before=NOW)
    _, secret = store.secret("card-master/app")
    raw = store.path.read_bytes()
    assert secret not in raw
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert not list(store.path.parent.glob("*.tmp"))
    assert cbor2.loads(raw)["kdf"]["alg"] == "scrypt"


def test_wrong_passphrase_fails_before_signing(store: FileKeyStore) -> None:
    store.create_issuer_key(Algorithm.eddsa, not_before=NOW)
    wrong = FileKeyStore(store.path.parent, "wrong horse")
    with pytest.raises(KeyStoreError, match="wrong key store passphrase"):
        wrong.issuer_signer(now=NOW)
    with pytest.raises(KeyStoreError, match="wrong"):
        wrong.unlock()


def test_swapped_entries_fail_authentication(store: FileKeyStore) -> None:
    store.ensure_secret("a", 16)
    store.ensure_secret("b", 16)
    data = cbor2.loads(store.path.read_bytes())
    data["secrets"]["a"], data["secrets"]["b"] = data["secrets"]["b"], data["secrets"]["a"]
    store.path.write_bytes(cbor2.dumps(data))
    with pytest.raises(KeyStoreError, match="fails authentication"):
        FileKeyStore(store.path.parent, "correct horse").secret("a")


@pytest.mark.parametrize("content", [b"", b"\xff", cbor2.dumps({"format": 9}), cbor2.dumps([1])])
def test_corrupt_file_is_a_key_store_error(store: FileKeyStore, content: bytes) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(content)
    with pytest.raises(KeyStoreError):
        store.secret_versions("x")


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="empty"):
        FileKeyStore(tmp_path, "")
    with pytest.raises(KeyStoreError, match="empty"):
        open_key_store(get_settings(key_passphrase="", data_dir=tmp_path))


def test_dev_passphrase_only_in_dev(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="outside env=dev"):
        open_key_store(get_settings(env="test", data_dir=tmp_path, key_passphrase=DEV_KEY_PASSPHRASE))
    store = open_key_store(get_settings(env="dev", data_dir=tmp_path))
    assert isinstance(store, FileKeyStore) and store.path.parent == tmp_path / "keys"


def test_default_scrypt_cost_round_trip(tmp_path: Path) -> None:
    store = open_key_store(get_settings(env="test", data_dir=tmp_path, key_passphrase="a real one"))
    assert store.ensure_secret("pii/index", 32) == 1
    assert cbor2.loads((tmp_path / "keys" / "keys.cbor").read_bytes())["kdf"]["n"] == 2**15


def test_rotation_overlap_retire_and_revoke(store: FileKeyStore) -> None:
    first = store.create_issuer_key(Algorithm.eddsa, not_before=NOW - timedelta(days=100))
    second = store.rotate_issuer_key(Algorithm.es256, now=NOW, overlap=timedelta(days=7))
    assert second.not_before == NOW + timedelta(days=7)
    assert store.issuer_signer(now=NOW).kid == first.kid  # old key signs during the overlap
    assert store.issuer_signer(now=NOW + timedelta(days=8)).kid == second.kid
    old = next(k for k in store.issuer_keys() if k.kid == first.kid)
    assert old.not_after == second.not_before  # cut-off = start of the new key
    retired = store.retire_issuer_key(second.kid, at=NOW + timedelta(days=10))
    assert retired.state is KeyState.retired and retired.not_after == NOW + timedelta(days=10)
    with pytest.raises(KeyStoreError, match="no active signing key"):
        store.issuer_signer(now=NOW + timedelta(days=11))
    assert store.revoke_issuer_key(first.kid).state is KeyState.revoked
    with pytest.raises(KeyStoreError, match="revoked"):
        store.retire_issuer_key(first.kid, at=NOW)
    with pytest.raises(KeyStoreError, match="no key with id"):
        store.revoke_issuer_key(b"\xee\xee")
    assert len({k.kid for k in store.issuer_keys()}) == 2


def test_store_signs_credentials_and_bundles_end_to_end(store: FileKeyStore) -> None:
    store.create_issuer_key(Algorithm.eddsa, not_before=NOW - timedelta(days=2))
    bundle_key = store.create_bundle_key(Algorithm.es256, not_before=NOW - timedelta(days=2))
    credential = issue_credential(store.issuer_signer(now=NOW), make_claims())
    raw = build_trust_bundle(store.bundle_signer(now=NOW), store.issuer_keys(), [], 1,
                             NOW - timedelta(hours=1), NOW + timedelta(days=1), issuer="SZGH")
    bundle = TrustBundle.load(raw, TrustAnchor.from_key(bundle_key))
    result = OfflineVerifier(bundle, clock=lambda: NOW).verify(credential)
    assert result.status is VerificationStatus.ok


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    FileKeyStore(tmp_path, "pw", scrypt_n=FAST).ensure_secret("seed", 16)  # create the file first
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            FileKeyStore(tmp_path, "pw").ensure_secret(f"name-{index}", 16)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = FileKeyStore(tmp_path, "pw")
    assert all(final.secret_versions(f"name-{i}") == [1] for i in range(8))


def _tamper(store: FileKeyStore, change: Callable[[dict[str, Any]], None]) -> FileKeyStore:
    data = cbor2.loads(store.path.read_bytes())
    change(data)
    store.path.write_bytes(cbor2.dumps(data))
    return FileKeyStore(store.path.parent, "correct horse")


def _swap_public_key(data: dict[str, Any]) -> None:
    data["issuer_keys"][0][3] = SoftwareSigner.generate(Algorithm.eddsa).public_key_bytes()


def _unrevoke(data: dict[str, Any]) -> None:
    data["issuer_keys"][0][4] = "active"


def _extend_window(data: dict[str, Any]) -> None:
    data["issuer_keys"][0][6] = None


def _drop_key(data: dict[str, Any]) -> None:
    data["issuer_keys"].pop()


@pytest.mark.parametrize("change", [_swap_public_key, _unrevoke, _extend_window, _drop_key])
def test_edited_key_records_fail_to_load(store: FileKeyStore, change: Callable[[dict[str, Any]], None]
                                         ) -> None:
    """Regression: the public key records were not authenticated, so an attacker who can write the
    file (not read the passphrase) could put their own public key — or un-revoke a key — into the
    records the next trust bundle is built from."""
    first = store.create_issuer_key(Algorithm.eddsa, not_before=NOW - timedelta(days=9))
    store.retire_issuer_key(first.kid, at=NOW - timedelta(days=1))
    store.revoke_issuer_key(first.kid)
    store.create_issuer_key(Algorithm.eddsa, not_before=NOW)
    tampered = _tamper(store, change)
    with pytest.raises(KeyStoreError, match="key records"):
        tampered.issuer_keys()


SHORT_ENTRY = b"\x00" * 5  # a 5-byte "nonce": AESGCM.decrypt raised ValueError


@pytest.mark.parametrize(("where", "value"), [
    ("secret", SHORT_ENTRY), ("check", SHORT_ENTRY), ("catalogue", SHORT_ENTRY),
    ("n", "1024"), ("n", 2**40), ("n", 1000), ("salt", "salt"), ("salt", b"short"),
    ("format", 1),
])
def test_corrupt_fields_are_key_store_errors(store: FileKeyStore, where: str, value: object) -> None:
    """Regression: a truncated entry or a wrongly typed kdf field escaped as ValueError/TypeError
    (or, for a huge scrypt n, tried to allocate terabytes)."""
    store.ensure_secret("pii/data", 32)

    def change(data: dict[str, Any]) -> None:
        if where == "secret":
            data["secrets"]["pii/data"][1] = value
        elif where in ("n", "salt"):
            data["kdf"][where] = value
        else:
            data[where] = value

    tampered = _tamper(store, change)
    with pytest.raises(KeyStoreError):
        tampered.secret("pii/data")


def test_a_leftover_world_readable_tmp_file_does_not_make_the_store_readable(store: FileKeyStore
                                                                             ) -> None:
    """Regression: O_CREAT keeps the mode of an existing keys.cbor.tmp (a crash, a careless copy),
    and the rename then published the key store as 0644."""
    store.path.parent.mkdir(parents=True)
    leftover = store.path.with_name(store.path.name + ".tmp")
    leftover.write_bytes(b"")
    leftover.chmod(0o644)
    store.ensure_secret("pii/data", 32)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
