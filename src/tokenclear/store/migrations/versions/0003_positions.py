"""positions: open positions per account and instrument, in whole contracts

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("positions",
                    sa.Column("account_id", sa.String(length=64), nullable=False),
                    sa.Column("instrument", sa.String(length=64), nullable=False),
                    sa.Column("quantity", sa.BigInteger(), nullable=False),
                    sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
                    sa.PrimaryKeyConstraint("account_id", "instrument"))


def downgrade() -> None:
    op.drop_table("positions")
