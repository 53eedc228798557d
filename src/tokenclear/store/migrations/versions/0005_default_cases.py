"""default_cases: a member's default management, its stored plan and each step's result; fund_sizings: each
sizing of the default fund

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from tokenclear.store.types import ExactDecimal

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "default_cases",
        sa.Column("member_id", sa.String(length=32), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("scenario", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("done", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "fund_sizings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.String(length=10), nullable=False),
        sa.Column("fund", ExactDecimal(24, 2), nullable=False),
        sa.Column("scenario", sa.String(length=64), nullable=False),
        sa.Column("contributions", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fund_sizings")
    op.drop_table("default_cases")
