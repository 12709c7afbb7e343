"""Source contracts: the schema a person approved at gate 1 (database access only, no connectors).

Common, not ingest's: the orchestrator writes the contract in the same transaction that applies the
gate-1 approval (so an approved run and its contract commit together, and the next run's ingest
reports drift against it at once), and ingest reads it. Both work on the one database's
`source_contracts` table (lockflow.common.db), so neither imports the other.
"""

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from lockflow.common.db import Database, SourceContractRow, SourceRow
from lockflow.common.models import ColumnSchema


def contract_of(db: Database, *, source_id: str) -> list[ColumnSchema] | None:
    """The approved schema of a source, if one was approved."""
    with db.transaction() as session:
        contract = session.get(SourceContractRow, source_id)
        if contract is None:
            return None
        return [ColumnSchema.model_validate(c) for c in contract.columns]


def save_contract(
    session: Session, *, source_id: str, columns: list[ColumnSchema], run_id: str, approved_by: str
) -> None:
    """Store (or replace) the schema approved at gate 1 as the source's contract (caller's transaction)."""
    if session.get(SourceRow, source_id) is None:
        return  # the source was deleted while the run waited: nothing to attach the contract to
    contract = session.get(SourceContractRow, source_id)
    payload = [c.model_dump(mode="json") for c in columns]
    if contract is None:
        session.add(
            SourceContractRow(source_id=source_id, columns=payload, run_id=run_id, approved_by=approved_by)
        )
    else:
        contract.columns, contract.run_id, contract.approved_by = payload, run_id, approved_by
        contract.approved_at = datetime.now(UTC)
