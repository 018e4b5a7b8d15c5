"""The non-volatile memory of an emulated NTAG 424 DNA: keys, files, counters, its JSON image, and
what an unauthenticated read of an SDM file shows (the SUN mirror).

:class:`Nvm` is everything that survives power loss; :mod:`cardsvc.emulator.ntag424` keeps the
volatile state (selection, EV2 session) and the command handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cardsvc.cardcrypto import sun
from cardsvc.emulator.base import JsonImage
from cardsvc.profiles.ntag424 import FREE, SDM_CTR_MIRROR, SDM_UID_MIRROR, AccessRights, FileSettings

Rng = Callable[[int], bytes]

KEY_COUNT = 5
KEY_SIZE = 16
UID_SIZE = 7
# NT4H2421Gx delivery configuration: CC file content and the three files' settings
FACTORY_CC = bytes.fromhex("001720010000FF0406E10401000000" "0506E10500808283") + bytes(9)


@dataclass
class NtagFile:
    """One standard data file: ISO file id, content and settings."""

    iso_id: bytes
    data: bytearray
    settings: FileSettings


def factory_files() -> dict[int, NtagFile]:
    free = AccessRights(FREE, FREE, FREE, 0)
    data_file = AccessRights(read=2, write=3, read_write=3, change=0)
    return {1: NtagFile(b"\xe1\x03", bytearray(FACTORY_CC), FileSettings(0x00, free, 32)),
            2: NtagFile(b"\xe1\x04", bytearray(256), FileSettings(0x00, free, 256)),
            3: NtagFile(b"\xe1\x05", bytearray(128), FileSettings(0x03, data_file, 128))}


@dataclass
class Nvm:
    """Everything that survives power loss."""

    uid: bytes
    keys: list[bytes] = field(default_factory=lambda: [bytes(KEY_SIZE)] * KEY_COUNT, repr=False)
    versions: list[int] = field(default_factory=lambda: [0] * KEY_COUNT)
    files: dict[int, NtagFile] = field(default_factory=factory_files)
    sdm_ctr: int = 0
    fail_total: int = 0
    fail_run: int = 0
    delay: int = 0

    def to_image(self) -> JsonImage:
        return {
            "uid": self.uid.hex().upper(),
            "keys": [{"key": k.hex().upper(), "version": v}
                     for k, v in zip(self.keys, self.versions, strict=True)],
            "files": {str(num): _file_to_image(f) for num, f in sorted(self.files.items())},
            "sdm_read_ctr": self.sdm_ctr,
            "fail": {"total": self.fail_total, "run": self.fail_run, "delay": self.delay},
        }

    @classmethod
    def from_image(cls, image: JsonImage) -> Nvm:
        """The memory :meth:`to_image` wrote; KeyError/ValueError when malformed."""
        files = {int(n): _file_from_image(f) for n, f in image["files"].items()}
        fail = image["fail"]
        nvm = cls(uid=bytes.fromhex(image["uid"]), keys=[bytes.fromhex(k["key"]) for k in image["keys"]],
                  versions=[int(k["version"]) for k in image["keys"]], files=files,
                  sdm_ctr=int(image["sdm_read_ctr"]), fail_total=int(fail["total"]),
                  fail_run=int(fail["run"]), delay=int(fail["delay"]))
        if len(nvm.uid) != UID_SIZE or [len(k) for k in nvm.keys] != [KEY_SIZE] * KEY_COUNT \
                or sorted(files) != [1, 2, 3]:
            raise ValueError("NTAG 424 image needs a 7-byte UID, 5 AES keys and files 1..3")
        return nvm

    def mirrored(self, number: int, rng: Rng) -> bytes:
        """File content as an unauthenticated read sees it: SUN values mirrored, counter advanced."""
        file = self.files[number]
        sdm = file.settings.sdm
        if sdm is None:
            return bytes(file.data)
        if self.sdm_ctr < sun.COUNTER_MAX:
            self.sdm_ctr += 1
        view = bytearray(file.data)
        if sdm.meta_read <= 4:
            picc = sun.encrypt_picc_data(self.keys[sdm.meta_read], self.uid, self.sdm_ctr, rng(5))
            _put_hex(view, sdm.picc_offset, picc)
        elif sdm.meta_read == FREE:  # plain mirrors; the counter in ASCII is MSB first
            if sdm.options & SDM_UID_MIRROR:
                _put_hex(view, sdm.uid_offset, self.uid)
            if sdm.options & SDM_CTR_MIRROR:
                _put_hex(view, sdm.ctr_offset, self.sdm_ctr.to_bytes(3, "big"))
        if sdm.file_read <= 4:
            mac_input = bytes(view[sdm.mac_input_offset : sdm.mac_offset])
            _put_hex(view, sdm.mac_offset,
                     sun.sdm_mac(self.keys[sdm.file_read], self.uid, self.sdm_ctr, mac_input))
        return bytes(view)


def _put_hex(view: bytearray, offset: int, value: bytes) -> None:
    """Mirror ``value`` as upper-case ASCII hex at ``offset`` (as the chip does)."""
    text = value.hex().upper().encode()
    view[offset : offset + len(text)] = text


def _file_to_image(file: NtagFile) -> JsonImage:
    return {"iso_id": file.iso_id.hex().upper(), "data": file.data.hex().upper(),
            "settings": file.settings.to_bytes().hex().upper()}


def _file_from_image(raw: JsonImage) -> NtagFile:
    return NtagFile(bytes.fromhex(raw["iso_id"]), bytearray.fromhex(raw["data"]),
                    FileSettings.parse(bytes.fromhex(raw["settings"])))
