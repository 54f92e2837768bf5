"""Trust: events carry their signature, commands their request's fingerprint, consumers
the hash of the last event they applied (so the next must link to it).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Nullable: what was stored before stays as it was (rows are never rewritten); an
# unsigned event is vouched for by the log's SigningStarted.
ADDED = {
    "events": [sa.Column("signed_by", sa.String(100), nullable=True),
               sa.Column("signature", sa.String(120), nullable=True)],
    "commands": [sa.Column("fingerprint", sa.String(100), nullable=True)],
    "tracking": [sa.Column("hash", sa.String(64), nullable=True)],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    schema = op.get_context().version_table_schema
    for table, columns in ADDED.items():
        # A database from a build between the releases may hold them already.
        have = {column["name"] for column in inspector.get_columns(table, schema=schema)}
        for column in columns:
            if column.name not in have:
                # Named outright: Alembic's ALTER does not go through schema translation.
                op.add_column(table, column, schema=schema)


def downgrade() -> None:
    schema = op.get_context().version_table_schema
    for table, columns in ADDED.items():
        for column in columns:
            op.drop_column(table, column.name, schema=schema)
