"""Alembic environment: runs on the connection :meth:`automl.service.store.Store.migrate` passes
(no alembic.ini: the service migrates its own database at start-up)."""

from alembic import context

from automl.service.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
