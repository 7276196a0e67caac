"""Alembic environment: migrations run on the connection ``histoapp.store.engine.migrate`` passes in
(inside its write-locked transaction, so concurrent openers wait instead of racing)."""

from alembic import context

from histoapp.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
