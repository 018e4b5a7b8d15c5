"""Reference data for a fresh install and the demo: service items, service points, partner bases.

The items are what a district trade-union service centre (职工服务中心) offers. Codes are stable
(they appear in service records, statistics and audit reasons); names are what staff see. Seeding is
idempotent: existing codes are updated, nothing is deleted.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from cardsvc.registry import verification_repo as repo
from cardsvc.registry.verification_models import PartnerBase, Programme, ServiceItem, ServicePoint

SERVICE_ITEMS: tuple[tuple[str, str], ...] = (
    ("establish_union", "组建工会"),
    ("recruit_members", "发展会员"),
    ("membership_transfer", "会员关系接转"),
    ("guidance", "建会入会指导"),
    ("policy_publicity", "政策宣传"),
    ("collect_appeals", "收集职工诉求"),
    ("education_training", "教育培训"),
    ("rights_protection", "权益维护"),
    ("hardship_aid", "困难帮扶"),
    ("consultation", "咨询服务"),
    ("activities", "组织文体活动"),
    ("personalised_services", "个性化服务"),
    ("legal_consultation", "法律咨询"),
    ("serious_illness_relief", "大病救助"),
    ("employment_entrepreneurship", "就业创业服务"),
)

SERVICE_POINTS: tuple[tuple[str, str, str | None], ...] = (
    ("sp-district-centre", "区总工会职工服务中心", "D01"),
    ("sp-chengguan", "城关镇职工服务站", "T01"),
    ("sp-xicheng-01", "西城街道职工服务站", None),
    ("sp-hitech-park", "高新园区职工服务站", "P01"),
)

PARTNER_BASES: tuple[tuple[str, str, str], ...] = (
    ("base-beidaihe", "北戴河职工疗休养基地", "秦皇岛"),
    ("base-huangshan", "黄山职工疗休养基地", "黄山"),
    ("base-wuyishan", "武夷山职工疗休养基地", "南平"),
)


def seed_reference_data(session: Session) -> None:
    """Service items, service points and partner bases (idempotent)."""
    items = [ServiceItem(code=c, name=n, sort=i) for i, (c, n) in enumerate(SERVICE_ITEMS, start=1)]
    points = [ServicePoint(code=c, name=n, org_code=o) for c, n, o in SERVICE_POINTS]
    bases = [PartnerBase(code=c, name=n, city=city) for c, n, city in PARTNER_BASES]
    repo.save_all(session, objects=[*items, *points, *bases])


def seed_programme(session: Session, *, code: str, base_code: str, name: str, starts_on: dt.date,
                   ends_on: dt.date, quota: int, categories: tuple[str, ...] = (),
                   named_list: bool = False) -> Programme:
    """Add (or update) one recuperation programme; ``used`` is kept on update."""
    existing = session.get(Programme, code)
    programme = existing or Programme(code=code, base_code=base_code, name=name, starts_on=starts_on,
                                      ends_on=ends_on, quota=quota)
    programme.base_code, programme.name, programme.quota = base_code, name, quota
    programme.starts_on, programme.ends_on = starts_on, ends_on
    programme.categories, programme.named_list = ",".join(categories), named_list
    repo.save_all(session, objects=[programme])
    return programme
