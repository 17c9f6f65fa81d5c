"""Alembic environment of the taxi ledger schema: always run by ``apps.common.db.Database.migrate``
on the connection (and inside the transaction) it hands over."""

from alembic import context

context.configure(connection=context.config.attributes["connection"],
                  version_table=context.config.attributes["version_table"],
                  transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
