"""Registry: organisations, member categories, members, transfers, consents, member events.

Revision ID: 0001_registry
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_registry"
down_revision = None
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)
CATEGORIES = (
    ("model_worker", "劳模"),
    ("advanced_worker", "先进职工"),
    ("frontline_worker", "一线职工"),
    ("migrant_worker", "农民工"),
)


def upgrade() -> None:
    _organisation()
    _categories()
    _member()
    _history()


def _organisation() -> None:
    op.create_table(
        "organisation",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=True),
        sa.Column("contact", sa.String(100), nullable=True),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=True),
    )
    op.create_index("ix_organisation_code", "organisation", ["code"], unique=True)
    op.create_index("ix_organisation_parent_id", "organisation", ["parent_id"])


def _categories() -> None:
    kinds = op.create_table(
        "member_category_kind",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.UniqueConstraint("code", name="uq_member_category_kind_code"),
        sa.UniqueConstraint("label", name="uq_member_category_kind_label"),
    )
    op.bulk_insert(kinds, [{"code": code, "label": label} for code, label in CATEGORIES])


def _member() -> None:
    op.create_table(
        "member",
        sa.Column("name", sa.String(30), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("joined_on", sa.Date(), nullable=True),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("gender", sa.String(8), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("id_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("id_index", sa.LargeBinary(32), nullable=True),
        sa.Column("phone_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("phone_index", sa.LargeBinary(32), nullable=True),
        sa.Column("key_version", sa.Integer(), nullable=True),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.Column("erased_at", STAMP, nullable=True),
        sa.UniqueConstraint("id_index", name="uq_member_id_index"),
    )
    op.create_index("ix_member_public_id", "member", ["public_id"], unique=True)
    op.create_index("ix_member_org_id", "member", ["org_id"])
    op.create_index("ix_member_phone_index", "member", ["phone_index"])
    op.create_table(
        "member_category",
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("category_id", sa.Integer(), sa.ForeignKey("member_category_kind.id"), primary_key=True),
    )


def _history() -> None:
    member_fk = sa.ForeignKey("member.id")
    op.create_table(
        "membership_transfer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), member_fk, nullable=False),
        sa.Column("from_org_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("to_org_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("transferred_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("recorded_at", STAMP, nullable=False),
    )
    op.create_index("ix_membership_transfer_member_id", "membership_transfer", ["member_id"])
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("granted_at", STAMP, nullable=False),
        sa.Column("withdrawn_at", STAMP, nullable=True),
    )
    op.create_index("ix_consent_member_id", "consent", ["member_id"])
    op.create_table(
        "member_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("at", STAMP, nullable=False),
    )
    op.create_index("ix_member_event_member_id", "member_event", ["member_id"])


def downgrade() -> None:
    for table in ("member_event", "consent", "membership_transfer", "member_category", "member",
                  "member_category_kind", "organisation"):
        op.drop_table(table)
