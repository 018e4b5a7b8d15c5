"""An emulated FMCOS 2.0 (FM1208 class) CPU card: a faithful model of the command set we use.

Commands: SELECT (FID, DF name), GET CHALLENGE (4/8), EXTERNAL / INTERNAL AUTHENTICATE,
ERASE DF, CREATE FILE (DF 38, key file 3F, binary 28, fixed record 2A; ``|80`` MAC, ``|C0``
MAC + encryption), WRITE KEY (install P1=01, update P1=type; CLA 84 line-protected),
READ / UPDATE BINARY (CLA 00 plain, CLA 04 line-protected), and the PC/SC reader pseudo-APDU
GET DATA ``FF CA 00 00 00`` (UID).

Security: each DF has a volatile security state S (0..15) set by EXTERNAL AUTHENTICATE to the
key's follow-up state; an access-right byte ``XY`` allows ``Y <= S <= X``. Behaviours not
confirmed from a primary source are ASSUMPTIONS (docs/cards-fmcos.md lists them):

- S is kept when a child DF of the current DF is selected and reset to 0 otherwise;
- a DF whose key file holds no external-auth key is unprotected (every right but "never" holds);
- the key file must be created first in a DF before any other file;
- a key installed with the 80/C0 flag in its type byte is "protected": its updates (P1 = key
  type) must be line-protected — ciphertext + MAC under the DF's external-auth key 00 ("master
  key"); other keys also take plain updates; a MAC failure answers 6988 and counts no attempt;
- a challenge is valid for the next command only.

Tearing (:meth:`FmcosCard.tear`): ERASE DF, CREATE FILE and WRITE KEY are atomic and modelled as
committed; UPDATE BINARY keeps the first half of its bytes (EEPROM page semantics, deterministic);
a failed EXTERNAL AUTHENTICATE has already decremented its counter; volatile state is lost.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto import fmcos as fc
from cardsvc.emulator import fmcos_fs as fs
from cardsvc.emulator.base import JsonImage
from cardsvc.emulator.fmcos_fs import MF_FID, StatusWord, fm1208_atr
from cardsvc.errors import CardIntegrityError, CardsvcError, CryptoError, MalformedApdu
from cardsvc.profiles.fmcos import allows

Rng = Callable[[int], bytes]


class FmcosCard:
    """One emulated FM1208-class card (TDES by default; ``suite="sm4"`` is an ASSUMPTION)."""

    family = "fmcos"

    def __init__(self, *, uid: bytes, mf: fs.DedicatedFile, suite: str = "tdes",
                 rng: Rng = os.urandom) -> None:
        if len(uid) not in (4, 7):
            raise CryptoError(f"UID must be 4 or 7 bytes, got {len(uid)}")
        self._uid = uid
        self.mf = mf
        self.suite_name = suite
        self._cs = fc.prepared_suite(suite)  # this card's keys, contexts made once
        self._rng = rng
        self._atr = fm1208_atr(uid)
        self._tearing = False
        self.power_on()

    @classmethod
    def blank(cls, *, uid: bytes | None = None, suite: str = "tdes",
              rng: Rng = os.urandom) -> FmcosCard:
        """A card as shipped: MF with its key file and external-auth key 00 = 16 x FF."""
        return cls(uid=uid if uid is not None else rng(4), mf=fs.factory_mf(), suite=suite, rng=rng)

    @classmethod
    def from_image(cls, image: JsonImage, *, rng: Rng = os.urandom) -> FmcosCard:
        return cls(uid=bytes.fromhex(image["uid"]), mf=fs.df_from_image(image["mf"]),
                   suite=image["suite"], rng=rng)

    def to_image(self) -> JsonImage:
        return {"family": self.family, "suite": self.suite_name, "uid": self._uid.hex().upper(),
                "mf": fs.df_to_image(self.mf)}

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def uid(self) -> bytes:
        return self._uid

    def power_on(self) -> None:
        self._path: list[fs.DedicatedFile] = [self.mf]
        self._ef: fs.ElementaryFile | None = None
        self._state = 0
        self._challenge: bytes | None = None

    def tear(self, apdu: bytes) -> None:
        self._tearing = True
        try:
            self.process(apdu)
        finally:
            self._tearing = False
            self.power_on()

    def process(self, apdu: bytes) -> bytes:
        # CLA FF is the reader's own pseudo-APDU: the card never sees it, its challenge survives
        challenge = self._challenge
        if apdu[:1] != b"\xff":
            self._challenge = None
        try:
            cmd = CommandApdu.from_bytes(apdu)
            data = self._dispatch(cmd, challenge)
        except MalformedApdu:
            return b"\x67\x00"
        except StatusWord as answer:
            return answer.sw.to_bytes(2, "big")
        except CardsvcError:
            return b"\x6f\x00"  # what a chip answers for an internal error; never an exception
        return data + b"\x90\x00"

    # --- dispatch --------------------------------------------------------------------------------

    def _dispatch(self, cmd: CommandApdu, challenge: bytes | None) -> bytes:
        entry = _COMMANDS.get(cmd.ins)
        if entry is None:
            raise StatusWord(0x6D00)
        classes, handler = entry
        if cmd.cla not in classes:
            raise StatusWord(0x6E00)
        return handler(self, cmd, challenge)

    @property
    def _df(self) -> fs.DedicatedFile:
        return self._path[-1]

    def _require(self, right: int) -> None:
        if (right & 0x0F) > (right >> 4):
            raise StatusWord(0x6982)  # "never"
        if self._df.is_protected() and not allows(right, self._state):
            raise StatusWord(0x6982)

    def _key(self, key_id: int, key_type: int) -> fs.CardKey:
        key_file = self._df.key_file
        key = key_file.keys.get(key_id) if key_file else None
        if key is None or key.type != key_type:
            raise StatusWord(0x6A88)
        return key

    def _line_key(self) -> fs.CardKey:
        key = self._df.key_file.first_of_type(fs.LINE_PROTECTION) if self._df.key_file else None
        if key is None:
            raise StatusWord(0x6A88)
        return key

    # --- selection -------------------------------------------------------------------------------

    def _get_data(self, cmd: CommandApdu, _challenge: bytes | None) -> bytes:
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            raise StatusWord(0x6A81)
        return self._uid

    def _select(self, cmd: CommandApdu, _challenge: bytes | None) -> bytes:
        if cmd.p1 == 0x04:
            return self._enter(self._find_by_name(cmd.data))
        if cmd.p1 != 0x00 or len(cmd.data) != 2:
            raise StatusWord(0x6A86)
        fid = int.from_bytes(cmd.data, "big")
        if fid == MF_FID:
            return self._enter(self.mf)
        ef = self._df.efs.get(fid)
        if ef is not None:
            self._ef = ef
            return b""
        child = next((d for d in self._df.dfs if d.fid == fid), None)
        if child is None:
            raise StatusWord(0x6A82)
        return self._enter(child)

    def _find_by_name(self, name: bytes) -> fs.DedicatedFile:
        found = next((d for d in self.mf.walk() if d.name and d.name == name), None)
        if found is None:
            raise StatusWord(0x6A82)
        return found

    def _enter(self, target: fs.DedicatedFile) -> bytes:
        if target in self._df.dfs:
            self._path.append(target)  # a child keeps the parent's security state (ASSUMPTION)
        elif target is not self._df:
            self._path = self._path_to(target)
            self._state = 0
        self._ef = None
        return bytes((0x6F, len(target.name) + 2, 0x84, len(target.name))) + target.name

    def _path_to(self, target: fs.DedicatedFile) -> list[fs.DedicatedFile]:
        def search(node: fs.DedicatedFile, trail: list[fs.DedicatedFile]) -> list[fs.DedicatedFile]:
            if node is target:
                return [*trail, node]
            for child in node.dfs:
                found = search(child, [*trail, node])
                if found:
                    return found
            return []

        return search(self.mf, [])

    # --- authentication --------------------------------------------------------------------------

    def _get_challenge(self, cmd: CommandApdu, _challenge: bytes | None) -> bytes:
        if (cmd.p1, cmd.p2) != (0, 0) or cmd.data:
            raise StatusWord(0x6A86)
        if cmd.le is None or cmd.le not in (4, 8, self._cs.block_size):
            raise StatusWord(0x6700)
        self._challenge = self._rng(cmd.le)
        return self._challenge

    def _external_auth(self, cmd: CommandApdu, challenge: bytes | None) -> bytes:
        if cmd.p1 != 0 or len(cmd.data) != self._cs.block_size:
            raise StatusWord(0x6700 if cmd.p1 == 0 else 0x6A86)
        key = self._key(cmd.p2, fs.EXTERNAL_AUTH)
        self._require(key.use)
        if key.attempts_left == 0:
            raise StatusWord(0x6983)
        if challenge is None:
            raise StatusWord(0x6984)
        expected = fc.auth_cryptogram(self._cs, key.value, challenge)
        if not hmac.compare_digest(expected, cmd.data):
            key.fourth = (key.fourth & 0xF0) | (key.attempts_left - 1)
            self._state = 0
            raise StatusWord(0x63C0 | key.attempts_left)
        key.fourth = (key.attempt_limit << 4) | key.attempt_limit
        self._state = key.third & 0x0F
        return b""

    def _internal_auth(self, cmd: CommandApdu, _challenge: bytes | None) -> bytes:
        if cmd.p1 != 0:
            raise StatusWord(0x6A86)
        if not cmd.data or len(cmd.data) % self._cs.block_size or len(cmd.data) > 32:
            raise StatusWord(0x6700)
        key = self._key(cmd.p2, fs.INTERNAL_AUTH)
        self._require(key.use)
        return self._cs.encrypt(key.value, cmd.data)

    # --- file system management ------------------------------------------------------------------

    def _erase_df(self, cmd: CommandApdu, _challenge: bytes | None) -> bytes:
        if (cmd.p1, cmd.p2) != (0, 0):
            raise StatusWord(0x6A86)
        self._require(self._df.erase_right)
        self._df.key_file, self._df.efs, self._df.dfs = None, {}, []
        self._ef = None
        return b""

    def _create_file(self, cmd: CommandApdu, _challenge: bytes | None) -> bytes:
        fid, df = (cmd.p1 << 8) | cmd.p2, self._df
        self._require(df.create_right)
        if fid == MF_FID or fid in df.fids():
            raise StatusWord(0x6A89)
        created = fs.parse_create(fid, cmd.data)
        if isinstance(created, fs.KeyFile):
            if df.key_file is not None:
                raise StatusWord(0x6A89)
        elif df.key_file is None:
            raise StatusWord(0x6985)  # the key file comes first in every DF (ASSUMPTION)
        if isinstance(created, fs.DedicatedFile) and any(
                d.name == created.name for d in self.mf.walk()):
            raise StatusWord(0x6A8A)
        if df.used() + created.size > df.size:
            raise StatusWord(0x6A84)
        df.add(created)
        return b""

    # --- keys ------------------------------------------------------------------------------------

    def _write_key(self, cmd: CommandApdu, challenge: bytes | None) -> bytes:
        key_file = self._df.key_file
        if key_file is None:
            raise StatusWord(0x6A82)
        body = self._key_payload(cmd, challenge)
        if len(body) != 5 + self._cs.key_size:
            raise StatusWord(0x6700)
        key = fs.CardKey(key_id=cmd.p2, type=body[0] & 0x3F, use=body[1], change=body[2],
                         third=body[3], fourth=body[4], value=bytes(body[5:]),
                         protected=bool(body[0] & 0x80))
        if cmd.p1 == 0x01:
            self._install_key(key_file, key)
        else:
            self._update_key(key_file, key, cmd)
        return b""

    def _key_payload(self, cmd: CommandApdu, challenge: bytes | None) -> bytes:
        if cmd.cla == 0x80:
            return cmd.data
        master = self._key(0x00, fs.EXTERNAL_AUTH)
        if challenge is None:
            raise StatusWord(0x6984)
        try:
            ciphertext = fc.unprotect(self._cs, master.value, cmd, challenge)
            return fc.decrypt_line(self._cs, master.value, ciphertext)
        except CardIntegrityError:
            raise StatusWord(0x6988) from None

    def _install_key(self, key_file: fs.KeyFile, key: fs.CardKey) -> None:
        self._require(key_file.add_right)
        if key.key_id in key_file.keys:
            raise StatusWord(0x6A80)
        if key_file.used() + fs.KEY_RECORD_OVERHEAD + len(key.value) > key_file.size:
            raise StatusWord(0x6A84)
        key_file.keys[key.key_id] = key

    def _update_key(self, key_file: fs.KeyFile, key: fs.CardKey, cmd: CommandApdu) -> None:
        current = self._key(key.key_id, cmd.p1)
        if key.type != current.type or (current.protected and cmd.cla != 0x84):
            raise StatusWord(0x6982)  # a protected key takes line-protected updates only
        self._require(current.change)
        key_file.keys[key.key_id] = key

    # --- binary files ----------------------------------------------------------------------------

    def _binary_target(self, cmd: CommandApdu) -> tuple[fs.ElementaryFile, int]:
        if cmd.p1 & 0x80:
            sfi = cmd.p1 & 0x1F
            ef = next((e for e in self._df.efs.values() if e.fid & 0x1F == sfi), None)
            if ef is None:
                raise StatusWord(0x6A82)
            self._ef = ef
            offset = cmd.p2
        else:
            offset = (cmd.p1 << 8) | cmd.p2
        if self._ef is None:
            raise StatusWord(0x6986)
        if self._ef.type != fs.BINARY:
            raise StatusWord(0x6981)
        if offset >= self._ef.size:
            raise StatusWord(0x6B00)
        return self._ef, offset

    def _read_binary(self, cmd: CommandApdu, challenge: bytes | None) -> bytes:
        ef, offset = self._binary_target(cmd)
        self._require(ef.read_right)
        if cmd.cla == 0x00:
            if ef.flags == 0xC0:
                raise StatusWord(0x6982)
            return self._slice(ef, offset, cmd.le)
        key = self._line_key()
        if challenge is None:
            raise StatusWord(0x6984)
        try:
            fc.unprotect(self._cs, key.value, cmd, challenge)
        except CardIntegrityError:
            raise StatusWord(0x6988) from None
        data = self._slice(ef, offset, cmd.le)
        if ef.flags == 0xC0:
            data = fc.encrypt_line(self._cs, key.value, data)
        return data + fc.line_mac(self._cs, key.value, data, challenge)

    @staticmethod
    def _slice(ef: fs.ElementaryFile, offset: int, le: int | None) -> bytes:
        available = ef.size - offset
        if le is None or le == 256:
            return bytes(ef.data[offset : offset + min(available, 256)])
        if le > available:
            raise StatusWord(0x6C00 | available)
        return bytes(ef.data[offset : offset + le])

    def _update_binary(self, cmd: CommandApdu, challenge: bytes | None) -> bytes:
        ef, offset = self._binary_target(cmd)
        self._require(ef.write_right)
        payload = self._update_payload(ef, cmd, challenge)
        if offset + len(payload) > ef.size:
            raise StatusWord(0x6700)
        if self._tearing:
            payload = payload[: len(payload) // 2]  # torn: the first half reached the EEPROM
        ef.data[offset : offset + len(payload)] = payload
        return b""

    def _update_payload(self, ef: fs.ElementaryFile, cmd: CommandApdu,
                        challenge: bytes | None) -> bytes:
        if cmd.cla == 0x00:
            if ef.flags:
                raise StatusWord(0x6982)  # a protected file takes protected writes only
            return cmd.data
        key = self._line_key()
        if challenge is None:
            raise StatusWord(0x6984)
        try:
            body = fc.unprotect(self._cs, key.value, cmd, challenge)
            return fc.decrypt_line(self._cs, key.value, body) if ef.flags == 0xC0 else body
        except CardIntegrityError:
            raise StatusWord(0x6988) from None


_Handler = Callable[[FmcosCard, CommandApdu, "bytes | None"], bytes]
_COMMANDS: dict[int, tuple[tuple[int, ...], _Handler]] = {
    0xA4: ((0x00,), FmcosCard._select),
    0x84: ((0x00,), FmcosCard._get_challenge),
    0x82: ((0x00,), FmcosCard._external_auth),
    0x88: ((0x00,), FmcosCard._internal_auth),
    0x0E: ((0x80,), FmcosCard._erase_df),
    0xE0: ((0x80,), FmcosCard._create_file),
    0xD4: ((0x80, 0x84), FmcosCard._write_key),
    0xB0: ((0x00, 0x04), FmcosCard._read_binary),
    0xD6: ((0x00, 0x04), FmcosCard._update_binary),
    0xCA: ((0xFF,), FmcosCard._get_data),
}
