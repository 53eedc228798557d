"""margin_calls.message_id: the call's ISO 20022 transaction id (at most 35 characters), which a member's
colr.004 answer or colr.009 dispute quotes as MrgnCallReqId

Revision ID: 0004
Revises: 0003
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("margin_calls") as batch:
        batch.add_column(sa.Column("message_id", sa.String(length=35), nullable=True))
    calls = sa.table("margin_calls", sa.column("id", sa.Integer), sa.column("key", sa.String),
                     sa.column("message_id", sa.String))
    connection = op.get_bind()
    for call_id, key in connection.execute(sa.select(calls.c.id, calls.c.key)).all():
        # the rule of tokenclear.clearing.iso20022.message_id, frozen here as of this revision
        message_id = "TC" + hashlib.sha256(key.encode()).hexdigest()[:33]
        connection.execute(calls.update().where(calls.c.id == call_id).values(message_id=message_id))
    with op.batch_alter_table("margin_calls") as batch:
        batch.create_index("ix_margin_calls_message_id", ["message_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("margin_calls") as batch:
        batch.drop_index("ix_margin_calls_message_id")
        batch.drop_column("message_id")
