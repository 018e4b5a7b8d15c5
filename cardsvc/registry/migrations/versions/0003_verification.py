"""Verification: API clients, audit log + head, service points/items/records, partner bases,
programmes, programme members, check-ins, challenges, SUN counters.

Revision ID: 0003_verification
Revises: 0002_cards
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_verification"
down_revision = "0002_cards"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    _clients_and_audit()
    _service_points()
    _recuperation()
    _card_proofs()


def _clients_and_audit() -> None:
    op.create_table(
        "api_client",
        sa.Column("client_id", sa.String(12), primary_key=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("service_point_id", sa.String(64), nullable=True),
        sa.Column("partner_base_id", sa.String(64), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("event_type", sa.String(48), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(48), nullable=False),
        sa.Column("ts", STAMP, nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("row_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.LargeBinary(32), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0, "last_hash": bytes(32)}])


def _service_points() -> None:
    op.create_table(
        "service_point",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("org_code", sa.String(32), nullable=True),
    )
    op.create_table(
        "service_item",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
    )
    op.create_table(
        "service_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("service_point_code", sa.String(64), sa.ForeignKey("service_point.code"), nullable=False),
        sa.Column("item_code", sa.String(32), sa.ForeignKey("service_item.code"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("card_number", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(12), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("recorded_at", STAMP, nullable=False),
        sa.UniqueConstraint("client_id", "idempotency_key", name="uq_service_record_idem"),
    )
    op.create_index("ix_service_record_service_point_code", "service_record", ["service_point_code"])
    op.create_index("ix_service_record_member_id", "service_record", ["member_id"])
    op.create_index("ix_service_record_month", "service_record", ["month"])


def _recuperation() -> None:
    op.create_table(
        "partner_base",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("city", sa.String(50), nullable=False),
    )
    op.create_table(
        "programme",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("base_code", sa.String(64), sa.ForeignKey("partner_base.code"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("categories", sa.String(200), nullable=False),
        sa.Column("named_list", sa.Boolean(), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
    )
    op.create_index("ix_programme_base_code", "programme", ["base_code"])
    op.create_table(
        "programme_member",
        sa.Column("programme_code", sa.String(64), sa.ForeignKey("programme.code"), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), primary_key=True),
    )
    op.create_table(
        "checkin",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("programme_code", sa.String(64), sa.ForeignKey("programme.code"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("card_number", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(12), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("checked_in_at", STAMP, nullable=False),
        sa.Column("checked_out_at", STAMP, nullable=True),
        sa.UniqueConstraint("programme_code", "member_id", name="uq_checkin_member"),
        sa.UniqueConstraint("programme_code", "idempotency_key", name="uq_checkin_idem"),
    )
    op.create_index("ix_checkin_programme_code", "checkin", ["programme_code"])


def _card_proofs() -> None:
    op.create_table(
        "challenge",
        sa.Column("nonce", sa.LargeBinary(16), primary_key=True),
        sa.Column("client_id", sa.String(12), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("expires_at", STAMP, nullable=False),
        sa.Column("used_at", STAMP, nullable=True),
    )
    op.create_index("ix_challenge_expires_at", "challenge", ["expires_at"])
    op.create_table(
        "sun_counter",
        sa.Column("card_number", sa.String(16), primary_key=True),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
    )


def downgrade() -> None:
    for table in ("sun_counter", "challenge", "checkin", "programme_member", "programme", "partner_base",
                  "service_record", "service_item", "service_point", "audit_head", "audit_log",
                  "api_client"):
        op.drop_table(table)
