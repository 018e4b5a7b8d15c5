"""Why a member list was refused: the desk's import page names the specific cause, in Chinese and
(after the language switch) in English, never the error's own English message or a class name."""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from msoffcrypto.format.ooxml import OOXMLFile  # type: ignore[import-untyped]
from openpyxl import Workbook

from cardsvc.config import get_settings
from cardsvc.errors import ImportFileError
from cardsvc.registry import columns, importer, sources
from cardsvc.registry.columns import MEMBER_ALIASES, MEMBER_REQUIRED
from cardsvc.verification.roles import Role
from cardsvc.web.context import WebContext
from cardsvc.web.i18n import LANG_COOKIE, MESSAGES, Lang, translate
from cardsvc.web.problems import install_page_handlers, page_problem
from tests.web.support import Site

_FIELD = re.compile(r'name="(csrf|nonce)" value="([^"]+)"')
_SHOWN = re.compile(r'id="import-problem">(.*?)</p>', re.S)
_ROW = "张三,11010519491231002X,G1\n"
_SHEET = "xl/worksheets/sheet1.xml"
_DTD = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'
_LONG_CELL = '姓名,"'.encode() + b"x" * 200_000 + b'"\n'  # over the csv module's field limit


def _workbook(*rows: tuple[str, ...]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _encrypted_xlsx() -> bytes:
    plain = _workbook(("姓名", "身份证号", "工会"), ("张三", "11010519491231002X", "G1"))
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt("secret", out)
    return out.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


# (upload name, content, reason, words of the Chinese message, words of the English message)
CASES: list[tuple[str, Callable[[], bytes], str, str, str]] = [
    ("list.csv", lambda: b"", "empty", "文件是空的", "the file is empty"),
    ("list.csv", lambda: bytes(range(256)) * 8, "not_a_spreadsheet", "这不是表格文件", "not a spreadsheet"),
    ("old.xlsx", lambda: bytes.fromhex("D0CF11E0A1B11AE1") + bytes(1024), "legacy_xls", "旧版 .xls",
     "legacy .xls"),
    ("locked.xlsx", _encrypted_xlsx, "encrypted_xlsx", "设置了打开密码", "password-protected"),
    ("cut.xlsx", lambda: _workbook(("姓名", "身份证号"), ("张三", "1"))[:1500], "corrupt_xlsx", "已损坏",
     "damaged"),
    ("bomb.xlsx", lambda: _zip({"[Content_Types].xml": b"<Types/>", _SHEET: bytes(48 << 20)}),
     "zip_bomb", "解压后异常巨大", "zip bomb"),
    ("dtd.xlsx", lambda: _zip({"[Content_Types].xml": _DTD}),
     "xml_dtd", "XML 声明（DTD）", "DTD"),
    ("list.csv", lambda: "姓名,身份证号,工会\n".encode("utf-16"), "unknown_encoding", "文件编码无法识别",
     "unknown text encoding"),
    ("list.csv", lambda: _LONG_CELL, "malformed_csv", "CSV 格式有误",
     "the CSV is malformed"),
    ("list.csv", lambda: b",,\n,,\n,,\n", "no_header", "找不到表头行", "no header row"),
    ("list.csv", lambda: "姓名,身份证号,工会\n".encode(), "no_data_rows", "没有会员数据行", "no member rows"),
    ("list.csv", lambda: "姓名,工会\n张三,G1\n".encode(), "missing_columns", "缺少必填列 身份证号",
     "required column(s) 身份证号 are missing"),
    ("list.csv", lambda: f"手机号,性别,工会\n1,男,G1\n{_ROW}".encode(), "missing_columns",
     "缺少必填列 姓名、身份证号", "required column(s) 姓名、身份证号 are missing"),
    ("list.csv", lambda: f"姓名,身份证号,工会,名字\n{_ROW}".encode(), "duplicate_column",
     "有两列表示同一字段（第二列：名字）", "the second: 名字"),
    ("list.csv", lambda: "姓名,身份证号\n张三,11010519491231002X\n".encode(), "no_org_column",
     "文件中没有 工会/单位 列", "has no 工会/单位 column"),
]


@pytest.fixture
def clerk(site: Site) -> Site:
    site.client = site.fresh_client()
    assert site.login(Role.clerk).status_code == 303
    return site


def _upload(site: Site, name: str, content: bytes) -> httpx.Response:
    fields = dict(_FIELD.findall(site.get("/desk/import").text))
    assert set(fields) == {"csrf", "nonce"}, "no guarded import form"
    return site.post("/desk/import", data=fields, files={"file": (name, content, "application/octet-stream")})


def _shown(response: httpx.Response) -> str:
    assert response.status_code == 422, response.status_code
    found = _SHOWN.search(response.text)
    assert found, "the import page shows no problem"
    assert "Traceback" not in response.text and "[import_file" not in response.text
    return found.group(1)


@pytest.mark.parametrize(("name", "content", "reason", "zh", "en"), CASES,
                         ids=[f"{case[2]}-{index}" for index, case in enumerate(CASES)])
def test_each_refused_list_says_why_in_chinese_then_english(
        clerk: Site, name: str, content: Callable[[], bytes], reason: str, zh: str, en: str) -> None:
    data = content()
    chinese = _shown(_upload(clerk, name, data))
    assert chinese.startswith("无法读取为会员名单：") and zh in chinese, chinese
    clerk.client.cookies.set(LANG_COOKIE, Lang.en.value)
    english = _shown(_upload(clerk, name, data))
    assert english.startswith("Cannot be read as a member list: ") and en in english, english
    for text in (chinese, english):
        assert not re.search(r"[A-Z][a-z]+(Error|Exception)\b|BadZipFile|\.py\b", text), text
        assert name not in text  # the error's own English message (it names the file) is not shown


def test_too_many_rows_is_named(clerk: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_ROWS", 2)
    shown = _shown(_upload(clerk, "list.csv", ("姓名,身份证号,工会\n" + _ROW * 3).encode()))
    assert "行数太多" in shown and "拆分" in shown


def test_every_reason_raised_has_a_message_in_both_languages() -> None:
    raised: set[str] = set()
    for module in (sources, columns, importer):
        source = Path(str(module.__file__)).read_text(encoding="utf-8")
        raised |= set(re.findall(r'reason="([a-z_]+)"', source))
    assert {case[2] for case in CASES} | {"too_many_rows"} <= raised
    for reason in raised:
        assert set(MESSAGES[f"problem.import_file.{reason}"]) == {Lang.zh, Lang.en}


def test_the_cli_line_gains_the_reason_code(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ImportFileError) as info, sources.open_table(path, MEMBER_ALIASES, MEMBER_REQUIRED):
        pass
    assert info.value.reason == "empty"
    assert info.value.diagnostics() == "empty.csv is empty [import_file.empty]"
    hinted = ImportFileError("more than 2 rows", reason="too_many_rows", hint="split the list")
    assert hinted.diagnostics() == "more than 2 rows [import_file.too_many_rows]\n  hint: split the list"
    assert ImportFileError("plain").diagnostics() == "plain [import_file]"


MISSING = ImportFileError("missing required columns: 姓名, 身份证号 (list.csv)", reason="missing_columns",
                          columns=("姓名", "身份证号"))


@pytest.mark.parametrize(("lang", "expected"), [
    (Lang.zh, "缺少必填列 姓名、身份证号。"), (Lang.en, "the required column(s) 姓名、身份证号 are missing")])
def test_page_problem_names_the_missing_columns(lang: Lang, expected: str) -> None:
    key, values = page_problem(MISSING)
    assert key == "problem.import_file.missing_columns" and values["detail"] == "姓名、身份证号"
    assert expected in translate(lang, key, **values)


def test_an_import_error_on_any_page_names_the_columns(tmp_path: Path) -> None:
    """The generic error page (an ImportFileError not caught by the desk's import form) too."""
    app = FastAPI()
    settings = get_settings(env="dev", data_dir=tmp_path)
    app.state.web = WebContext(settings=settings, sessions=None, accounts=None)  # type: ignore[arg-type]
    install_page_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise MISSING

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/boom")

    with ThreadPoolExecutor(1) as worker:  # off the event loop a browser test may hold on this thread
        answer = worker.submit(asyncio.run, run()).result()
    assert answer.status_code == 422 and "缺少必填列 姓名、身份证号。" in answer.text
    assert "list.csv" not in answer.text  # the error's own message stays in the log


def test_the_desk_import_page_names_each_missing_column(clerk: Site) -> None:
    data = "手机号,工会\n13800000000,G1\n".encode()
    chinese = _shown(_upload(clerk, "list.csv", data))
    assert "缺少必填列 姓名、身份证号。" in chinese
    clerk.client.cookies.set(LANG_COOKIE, Lang.en.value)
    assert "the required column(s) 姓名、身份证号 are missing" in _shown(_upload(clerk, "list.csv", data))
    clerk.client.cookies.delete(LANG_COOKIE)
