"""Cards: batches, batch members, card-number counters, cards (journal), card events, prints.

Revision ID: 0002_cards
Revises: 0001_registry
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_cards"
down_revision = "0001_registry"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    _batches()
    _cards()
    _history()


def _batches() -> None:
    op.create_table(
        "card_batch",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number_length", sa.Integer(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("selection", sa.String(400), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
    )
    op.create_index("ix_card_batch_label", "card_batch", ["label"], unique=True)
    op.create_table(
        "card_batch_member",
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("card_batch.id"), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), primary_key=True),
    )
    op.create_index("ix_card_batch_member_member_id", "card_batch_member", ["member_id"])
    op.create_table(
        "card_number_counter",
        sa.Column("prefix", sa.String(6), primary_key=True),
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("next_seq", sa.Integer(), nullable=False),
    )


def _cards() -> None:
    op.create_table(
        "card",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("card_number", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("card_batch.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("member.id"), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("uid_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("station", sa.String(100), nullable=True),
        sa.Column("credential", sa.LargeBinary(), nullable=True),
        sa.Column("issued_at", STAMP, nullable=True),
        sa.Column("expires_at", STAMP, nullable=True),
        sa.Column("replaces_id", sa.Integer(), sa.ForeignKey("card.id"), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.UniqueConstraint("uid_hash", name="uq_card_uid_hash"),
    )
    op.create_index("ix_card_card_number", "card", ["card_number"], unique=True)
    op.create_index("ix_card_batch_id", "card", ["batch_id"])
    op.create_index("ix_card_member_id", "card", ["member_id"])
    op.create_index("ix_card_state", "card", ["state"])
    # at most one live card per member: a partial unique index (SQLite ≥ 3.8 and PostgreSQL)
    op.create_index("uq_card_live_member", "card", ["member_id"], unique=True,
                    sqlite_where=sa.text("live"), postgresql_where=sa.text("live"))


def _history() -> None:
    op.create_table(
        "card_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("card_id", sa.Integer(), sa.ForeignKey("card.id"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("at", STAMP, nullable=False),
    )
    op.create_index("ix_card_event_card_id", "card_event", ["card_id"])
    op.create_table(
        "card_print",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("card_id", sa.Integer(), sa.ForeignKey("card.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("reprint", sa.Boolean(), nullable=False),
        sa.Column("at", STAMP, nullable=False),
    )
    op.create_index("ix_card_print_card_id", "card_print", ["card_id"])


def downgrade() -> None:
    for table in ("card_print", "card_event", "card", "card_number_counter", "card_batch_member",
                  "card_batch"):
        op.drop_table(table)
