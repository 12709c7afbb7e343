"""Alembic environment: runs on the connection handed over by lockflow.common.db.migrate."""

from alembic import context

import lockflow.common.auth_tables  # noqa: F401  (the auth tables join Base.metadata: one schema)
from lockflow.common.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through lockflow.common.db.migrate(engine)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
