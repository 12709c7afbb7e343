"""runs: how many quality findings are still open after gate 2 (so a list can tell "completed with open
findings" from "completed" without reading each run's state)

Revision ID: 0009
Revises: 0008_monitoring
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: unknown until the quality stage has assessed the run (and for runs from before).
    op.add_column("runs", sa.Column("open_findings", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("open_findings")
