"""Organisation hierarchy import: kinds, parents, USCC check, all-or-nothing, upsert."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardsvc.errors import InvalidRecord
from cardsvc.registry.db import session_factory
from cardsvc.registry.models import OrgKind
from cardsvc.registry.org_import import parse_kind, parse_uscc
from cardsvc.registry.services import OrgService, RegistryService


@pytest.fixture
def orgs(service: RegistryService, engine) -> OrgService:  # service imports the base hierarchy
    return OrgService(session_factory(engine))


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "more_orgs.csv"
    path.write_text("编码,名称,类型,上级编码,统一社会信用代码\n" + text, encoding="utf-8")
    return path


# Public vectors: arthurdejong/python-stdnum : stdnum/cn/uscc.py docstring (91110000600037341L valid);
# php-stdnum tests (A1110000600037341L invalid); 91350100M000100Y43 from hutool CreditCodeUtilTest.
@pytest.mark.parametrize("code", ["91110000600037341L", "91350100M000100Y43",
                                  "９１１１００００６０００３７３４１ｌ"])
def test_uscc_valid(code: str) -> None:
    assert parse_uscc(code) in {"91110000600037341L", "91350100M000100Y43"}


@pytest.mark.parametrize(("code", "reason"), [
    ("91110000600037341X", "uscc_check"), ("A1110000600037341L", "uscc_check"),
    ("12345", "uscc_shape"), ("9111000060003734IL", "uscc_shape"),
])
def test_uscc_invalid(code: str, reason: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        parse_uscc(code)
    assert info.value.reason == reason


def test_kinds_in_chinese_and_english() -> None:
    assert parse_kind("企业工会") is OrgKind.enterprise_union
    assert parse_kind("village_joint_union") is OrgKind.village_joint_union
    with pytest.raises(InvalidRecord):
        parse_kind("协会")


def test_base_hierarchy_is_listed(orgs: OrgService) -> None:
    listed = {o.code: o.parent_code for o in orgs.list_orgs()}
    assert listed == {"D01": None, "T01": "D01", "P01": "D01", "G1": "T01", "G2": "T01", "G3": "P01"}


def test_child_before_parent_and_upsert(orgs: OrgService, tmp_path: Path) -> None:
    report = orgs.import_orgs(_csv(tmp_path, "G9,新建项目工会,项目工会,I01,\nI01,建筑产业工会,产业工会,D01,\n"
                                             "G1,城关镇第一机械厂工会(改名),企业工会,T01,\n"))
    assert (report.created, report.updated, report.problems) == (2, 1, ())
    listed = {o.code: o for o in orgs.list_orgs()}
    assert listed["G9"].parent_code == "I01" and listed["G1"].name.endswith("(改名)")


def test_any_problem_imports_nothing(orgs: OrgService, tmp_path: Path) -> None:
    report = orgs.import_orgs(_csv(tmp_path, "G7,好工会,企业工会,T01,\nG8,坏工会,企业工会,G1,\n"
                                             "G9,无上级,企业工会,,\nG10,错类型,协会,T01,\n"
                                             "G11,错代码,企业工会,T01,91110000600037341X\nG7,重复,企业工会,T01,\n"
                                             "D02,第二个区,区总工会,D01,\n"))
    assert [(p.row, p.reason) for p in report.problems] == [
        (3, "parent_not_federation"), (4, "missing"), (5, "unknown_kind"), (6, "uscc_check"),
        (7, "duplicate_in_file"), (8, "parent_not_allowed")]
    assert report.created == 0 and "G7" not in {o.code for o in orgs.list_orgs()}
