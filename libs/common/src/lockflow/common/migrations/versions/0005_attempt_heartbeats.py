"""stage attempts: heartbeat, deadline and dispatch count, so an attempt whose worker died is noticed

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stage_attempts") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("dispatches", sa.Integer(), nullable=False, server_default="1"))
    op.create_index("ix_stage_attempts_status", "stage_attempts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_stage_attempts_status", table_name="stage_attempts")
    with op.batch_alter_table("stage_attempts") as batch:
        batch.drop_column("dispatches")
        batch.drop_column("deadline_at")
        batch.drop_column("heartbeat_at")
