"""deployments: where the clearing system's contracts live, so a restart can attach to them

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("deployments",
                    sa.Column("name", sa.String(length=32), nullable=False),
                    sa.Column("record", sa.JSON(), nullable=False),
                    sa.PrimaryKeyConstraint("name"))


def downgrade() -> None:
    op.drop_table("deployments")
