"""Staff users, staff sessions and web form nonces (the web pages' login).

Revision ID: 0004_staff
Revises: 0003_verification
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_staff"
down_revision = "0003_verification"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(80), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("service_point_id", sa.String(64), nullable=True),
        sa.Column("partner_base_id", sa.String(64), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", STAMP, nullable=True),
        sa.Column("created_at", STAMP, nullable=False),
        sa.UniqueConstraint("username", name="uq_staff_user_username"),
    )
    op.create_table(
        "staff_session",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("staff_user.id"), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("last_seen_at", STAMP, nullable=False),
    )
    op.create_index("ix_staff_session_user_id", "staff_session", ["user_id"])
    op.create_table(
        "web_form_nonce",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("staff_user.id"), nullable=False),
        sa.Column("used_at", STAMP, nullable=False),
        sa.Column("result", sa.String(500), nullable=False),
    )
    op.create_index("ix_web_form_nonce_user_id", "web_form_nonce", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_web_form_nonce_user_id", table_name="web_form_nonce")
    op.drop_table("web_form_nonce")
    op.drop_index("ix_staff_session_user_id", table_name="staff_session")
    op.drop_table("staff_session")
    op.drop_table("staff_user")
