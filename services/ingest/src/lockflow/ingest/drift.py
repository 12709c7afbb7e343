"""Schema drift: what a run read, compared with the schema a person approved for the source."""

from lockflow.common.models import ColumnSchema, SchemaChange


def schema_drift(contract: list[ColumnSchema], found: list[ColumnSchema]) -> list[SchemaChange]:
    """Columns added, removed, retyped, or newly nullable, in the contract's column order."""
    expected = {c.name: c for c in contract}
    seen = {c.name: c for c in found}
    changes: list[SchemaChange] = []
    for column in contract:
        now = seen.get(column.name)
        if now is None:
            changes.append(SchemaChange(column=column.name, change="removed", expected=column.dtype))
        elif now.dtype != column.dtype:
            changes.append(
                SchemaChange(
                    column=column.name, change="type_changed", expected=column.dtype, found=now.dtype
                )
            )
        elif now.nullable and not column.nullable:
            changes.append(
                SchemaChange(
                    column=column.name, change="nullability_changed", expected="not null", found="nullable"
                )
            )
    changes.extend(
        SchemaChange(column=c.name, change="added", found=c.dtype) for c in found if c.name not in expected
    )
    return changes
