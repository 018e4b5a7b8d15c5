"""Privacy requests: consent withdrawals and erasures asked for by members (a queue with a record).

Revision ID: 0005_privacy_requests
Revises: 0004_staff
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_privacy_requests"
down_revision = "0004_staff"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_request",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("member_public_id", sa.String(40), nullable=False),
        sa.Column("partner_code", sa.String(64), nullable=True),
        sa.Column("received_at", STAMP, nullable=False),
        sa.Column("received_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("handled_at", STAMP, nullable=True),
        sa.Column("handled_by", sa.String(64), nullable=True),
        sa.Column("note", sa.String(200), nullable=False),
    )
    op.create_index("ix_privacy_request_member_public_id", "privacy_request", ["member_public_id"])
    op.create_index("ix_privacy_request_status", "privacy_request", ["status"])


def downgrade() -> None:
    op.drop_index("ix_privacy_request_status", table_name="privacy_request")
    op.drop_index("ix_privacy_request_member_public_id", table_name="privacy_request")
    op.drop_table("privacy_request")
