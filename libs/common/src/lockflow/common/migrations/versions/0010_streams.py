"""Live streams: a run's kind (batch or stream) and the stream a snapshot run was made from; each closed
window of a stream (stream_windows), each approved version of its standing policy (stream_policies), and
a stream's snapshot schedule (stream_snapshot_schedules)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("kind", sa.String(20), nullable=False, server_default="batch"))
    op.add_column("runs", sa.Column("stream_id", sa.String(36), nullable=True))
    op.create_index("ix_runs_kind_created_at", "runs", ["kind", "created_at", "id"])
    op.create_index("ix_runs_stream_id", "runs", ["stream_id"])
    op.create_table(
        "stream_windows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("quality_score", sa.Float(), nullable=False),
        sa.Column("freshness_p99_seconds", sa.Float(), nullable=True),
        sa.Column("artifact_uri", sa.String(1000), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("reopened", sa.JSON(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("stream_id", "window_start", name="uq_stream_windows_start"),
    )
    op.create_index("ix_stream_windows_stream_id_start", "stream_windows", ["stream_id", "window_start"])
    op.create_table(
        "stream_policies",
        sa.Column("stream_id", sa.String(36), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("approved_by", sa.String(200), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "stream_snapshot_schedules",
        sa.Column("stream_id", sa.String(36), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("last_windows", sa.Integer(), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("goal", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("last_run_id", sa.String(36), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("stream_snapshot_schedules")
    op.drop_table("stream_policies")
    op.drop_index("ix_stream_windows_stream_id_start", "stream_windows")
    op.drop_table("stream_windows")
    op.drop_index("ix_runs_stream_id", "runs")
    op.drop_index("ix_runs_kind_created_at", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("stream_id")
        batch.drop_column("kind")
