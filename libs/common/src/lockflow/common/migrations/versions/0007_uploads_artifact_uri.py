"""uploads: the uri of each upload's bytes in the artifact store (no upload folder is shared)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: an upload recorded before this revision had its bytes in the gateway's folder only.
    op.add_column("uploads", sa.Column("uri", sa.String(length=1000), nullable=True))
    op.create_index("ix_uploads_uri", "uploads", ["uri"])


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:  # SQLite drops a column by copying the table
        batch.drop_index("ix_uploads_uri")
        batch.drop_column("uri")
