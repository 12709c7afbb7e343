"""indexes for the reads the API makes: run lists per caller, shares per user, a run's requests and events

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# name -> (table, columns); the same indexes are declared on the models in lockflow.common.db and
# lockflow.common.auth_tables.
INDEXES = {
    # GET /runs: newest first (admins: every run) and the caller's own runs newest first.
    "ix_runs_created_at_id": ("runs", ["created_at", "id"]),
    "ix_runs_requested_by_created_at": ("runs", ["requested_by", "created_at", "id"]),
    # The ids of the runs shared with a user (every list filters by them).
    "ix_object_shares_type_username": ("object_shares", ["object_type", "username"]),
    # A run list's "is this gate still open" and GET /decisions?status=&run_id=.
    "ix_decision_requests_run_id_status": ("decision_requests", ["run_id", "status"]),
    "ix_decision_requests_status_created_at": ("decision_requests", ["status", "created_at", "id"]),
    # A run's timeline after a cursor and its attempts in order.
    "ix_run_events_run_id_id": ("run_events", ["run_id", "id"]),
    "ix_stage_attempts_run_id_requested_at": ("stage_attempts", ["run_id", "requested_at"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
