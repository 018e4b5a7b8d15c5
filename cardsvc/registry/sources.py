"""Reading member and organisation lists: XLSX (openpyxl read-only, defusedxml) and CSV.

Hostile or broken files fail with :class:`ImportFileError` before anything is written: not a
spreadsheet, legacy ``.xls``, password-protected workbooks, zip bombs (size and ratio limits checked
from the zip directory), XML with a DTD or entities (refused by a pre-scan and by defusedxml), unknown
text encodings. Each carries a ``reason`` code that pages map to a localized message. Rows
stream with bounded memory; a run of empty rows ends the table (Excel's formatted-but-empty rows).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cardsvc.errors import ImportFileError
from cardsvc.registry.columns import ColumnMap, map_columns, recognised

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_UNZIPPED_BYTES = 1024 * 1024 * 1024
MAX_ZIP_RATIO = 200
MAX_ZIP_ENTRIES = 10_000  # a real workbook has tens of parts; each .xml part is opened for the DTD scan
MAX_ROWS = 2_000_000
MAX_COLUMNS = 64
MAX_CELL_CHARS = 500
EMPTY_RUN_ENDS_TABLE = 1000
HEADER_SEARCH_ROWS = 20
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")  # its OLE directory entry name


@dataclass(frozen=True, slots=True)
class SheetRow:
    number: int  # 1-based row number as the clerk sees it in Excel or a text editor
    cells: tuple[object, ...] = field(repr=False)  # names and ID numbers: never in a repr


@dataclass(frozen=True)
class Table:
    columns: ColumnMap
    header_row: int
    rows: Iterator[SheetRow]
    estimated_rows: int | None


@contextlib.contextmanager
def open_table(path: Path, aliases: Mapping[str, tuple[str, ...]],
               required: Sequence[str]) -> Iterator[Table]:
    """Open ``path`` (XLSX or CSV, by content) and map its header row."""
    head = _check_file(path)
    if head.startswith(b"PK\x03\x04"):
        with _xlsx_rows(path) as (raw, estimate):
            yield _table(raw, estimate, aliases, required)
    elif head.startswith(_OLE_MAGIC) and _is_encrypted_ooxml(path):
        raise ImportFileError(f"{path.name} is a password-protected workbook", reason="encrypted_xlsx",
                              hint="open it in Excel or WPS, remove the password and save it again")
    elif head.startswith(_OLE_MAGIC):
        raise ImportFileError("legacy .xls (Excel 97-2003) files are not read", reason="legacy_xls",
                              hint="open it in Excel or WPS and save as .xlsx or CSV (UTF-8)")
    else:
        with _csv_rows(path) as raw:
            yield _table(raw, None, aliases, required)


def _check_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ImportFileError(f"cannot read {path.name}: {exc.strerror}", reason="unreadable") from exc
    if size == 0:
        raise ImportFileError(f"{path.name} is empty", reason="empty")
    if size > MAX_FILE_BYTES:
        raise ImportFileError(f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MiB",
                              reason="too_large", hint="split the list into several files")
    return head


def _is_encrypted_ooxml(path: Path) -> bool:
    """An encrypted .xlsx is an OLE container holding an ``EncryptedPackage`` stream (MS-OFFCRYPTO)."""
    with path.open("rb") as handle:
        tail = b""
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            if _ENCRYPTED_PACKAGE in tail + chunk:
                return True
            tail = chunk[-len(_ENCRYPTED_PACKAGE):]
    return False


def _table(raw: Iterator[SheetRow], estimate: int | None, aliases: Mapping[str, tuple[str, ...]],
           required: Sequence[str]) -> Table:
    header = _find_header(raw, aliases)
    columns = map_columns(header.cells, aliases, required)
    rows = _data_rows(raw, width=len(header.cells))
    first = next(rows, None)
    if first is None:
        raise ImportFileError("the file has a header row but no data rows", reason="no_data_rows")
    remaining = None if estimate is None else max(estimate - header.number, 1)
    return Table(columns=columns, header_row=header.number, rows=_chain(first, rows),
                 estimated_rows=remaining)


def _find_header(raw: Iterator[SheetRow], aliases: Mapping[str, tuple[str, ...]]) -> SheetRow:
    """The first row naming at least two known columns, within the first rows (titles above it)."""
    first: SheetRow | None = None
    for row in raw:
        if row.number > HEADER_SEARCH_ROWS:
            break
        if not any(_cell_text(c) for c in row.cells):
            continue
        first = first or row
        if recognised(row.cells, aliases) >= 2:
            return row
    if first is None:
        raise ImportFileError("the file has no header row (the first rows are empty)", reason="no_header")
    return first  # map_columns will say which columns are missing


def _data_rows(raw: Iterator[SheetRow], *, width: int) -> Iterator[SheetRow]:
    empty_run = 0
    for count, row in enumerate(raw, start=1):
        if count > MAX_ROWS:
            raise ImportFileError(f"more than {MAX_ROWS} rows", reason="too_many_rows",
                                  hint="split the list into several files")
        if not any(_cell_text(c) for c in row.cells):
            empty_run += 1
            if empty_run >= EMPTY_RUN_ENDS_TABLE:
                return
            continue
        empty_run = 0
        yield SheetRow(row.number, _fit(row.cells, width))


def _fit(cells: tuple[object, ...], width: int) -> tuple[object, ...]:
    cells = cells[:width]
    return cells + (None,) * (width - len(cells))


def _chain(first: SheetRow, rest: Iterator[SheetRow]) -> Iterator[SheetRow]:
    yield first
    yield from rest


def _cell_text(cell: object) -> str:
    return "" if cell is None else str(cell).strip()


# --- XLSX --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _xlsx_rows(path: Path) -> Iterator[tuple[Iterator[SheetRow], int | None]]:
    _check_zip(path)
    import openpyxl
    from defusedxml import DefusedXmlException
    from openpyxl.utils.exceptions import InvalidFileException

    failures = (InvalidFileException, zipfile.BadZipFile, DefusedXmlException, KeyError, ValueError,
                TypeError, SyntaxError, EOFError)
    with path.open("rb") as handle:  # ours to close, whatever openpyxl's generators leave open
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except failures as exc:
            raise ImportFileError(f"{path.name} is not a readable XLSX workbook ({exc.__class__.__name__})",
                                  reason="corrupt_xlsx",
                                  hint="open it in Excel or WPS and save it again as .xlsx") from exc
        try:
            sheet = book.worksheets[0]
            yield _guarded(_sheet_rows(sheet), failures, path.name), _estimate(sheet)
        finally:
            book.close()


def _sheet_rows(sheet: Any) -> Iterator[SheetRow]:
    for number, values in enumerate(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS), start=1):
        yield SheetRow(number, tuple(_clip(v) for v in values))


def _estimate(sheet: Any) -> int | None:
    try:
        rows = sheet.max_row
    except (ValueError, TypeError):
        return None
    return int(rows) if isinstance(rows, int) and rows <= MAX_ROWS else None


def _guarded(rows: Iterator[SheetRow], failures: tuple[type[BaseException], ...], name: str
             ) -> Iterator[SheetRow]:
    try:
        yield from rows
    except failures as exc:
        raise ImportFileError(f"{name}: the sheet cannot be read ({exc.__class__.__name__})",
                              reason="corrupt_xlsx",
                              hint="open it in Excel or WPS and save it again as .xlsx") from exc


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_sizes(infos, path.name)
            for info in infos:
                if info.filename.endswith((".xml", ".rels")):
                    _check_no_dtd(archive, info, path.name)
    except zipfile.BadZipFile as exc:
        raise ImportFileError(f"{path.name} is not an XLSX file (broken zip archive)",
                              reason="corrupt_xlsx") from exc


def _check_sizes(infos: Sequence[zipfile.ZipInfo], name: str) -> None:
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ImportFileError(f"{name} holds more than {MAX_ZIP_ENTRIES} zip entries: not a member list",
                              reason="zip_bomb")
    total = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    ratios = [i.file_size / max(i.compress_size, 1) for i in infos if i.file_size > 10 * 2**20]
    if total > 10 * 2**20:  # many parts just under the per-part threshold
        ratios.append(total / packed)
    if total > MAX_UNZIPPED_BYTES or any(r > MAX_ZIP_RATIO for r in ratios):
        raise ImportFileError(f"{name} unpacks to {total // 2**20} MiB or compresses suspiciously well: "
                              "refused as a possible zip bomb", reason="zip_bomb",
                              hint="split the list into several files")


def _check_no_dtd(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    with archive.open(info) as member:
        prolog = member.read(4096)
    if any(marker in prolog for marker in _DTD_MARKERS):
        raise ImportFileError(f"{name}: {info.filename} declares a DTD or entities; refused",
                              reason="xml_dtd",
                              hint="spreadsheets never need a DTD; save the file again from Excel")


def _clip(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[:MAX_CELL_CHARS]
    return value


# --- CSV ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _csv_rows(path: Path) -> Iterator[Iterator[SheetRow]]:
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, newline="") as handle:
        yield _guarded_csv(handle, path.name)


def _guarded_csv(handle: IO[str], name: str) -> Iterator[SheetRow]:
    sample = handle.read(64 * 1024)
    handle.seek(0)
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        for row in reader:
            yield SheetRow(reader.line_num, tuple(_clip(c) for c in row[:MAX_COLUMNS]))
    except csv.Error as exc:
        raise ImportFileError(f"{name}: malformed CSV near line {reader.line_num}: {exc}",
                              reason="malformed_csv") from exc


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) or GB18030; anything else is refused with a clear message."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(f"{path.name} is UTF-16 text", reason="unknown_encoding",
                              hint="save it as CSV (UTF-8) or .xlsx")
    if head.startswith(codecs.BOM_UTF8):
        _decodes(path, "utf-8-sig")
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        with contextlib.suppress(UnicodeDecodeError):
            _decodes(path, encoding)
            return encoding
    raise ImportFileError(f"{path.name} is neither UTF-8 nor GB18030 text", reason="unknown_encoding",
                          hint="save it as CSV (UTF-8) or .xlsx")


def _decodes(path: Path, encoding: str) -> None:
    """Decode the whole file in chunks (bounded memory); NUL bytes mean it is not text."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            if b"\x00" in chunk:
                raise ImportFileError(f"{path.name} is a binary file, not CSV text",
                                      reason="not_a_spreadsheet", hint="member lists are .xlsx or .csv")
            decoder.decode(chunk)
        decoder.decode(b"", final=True)

