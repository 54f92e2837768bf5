"""The kit's tables as v0.1.0 made them (the baseline).

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The service's own schema on PostgreSQL (None on SQLite), named outright: Alembic's
    # own statements do not go through the connection's schema translation.
    schema = op.get_context().version_table_schema
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("stream_id", "version", name="events_stream_version"),
        schema=schema,
    )
    op.create_index("events_recorded_at", "events", ["recorded_at"], schema=schema)
    op.create_table(
        "commands",
        sa.Column("command_id", sa.String(200), primary_key=True),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("first_position", sa.BigInteger, nullable=True),
        sa.Column("last_position", sa.BigInteger, nullable=True),
        schema=schema,
    )
    op.create_table(
        "tracking",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("upstream", sa.String(100), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("stream_seq", sa.BigInteger, nullable=False),
        schema=schema,
    )
    op.create_table(
        "parked",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("upstream", sa.String(100), nullable=False),
        sa.Column("stream_seq", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=True),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("consumer", "upstream", "stream_seq", name="parked_once"),
        schema=schema,
    )


def downgrade() -> None:
    for table in ("parked", "tracking", "commands", "events"):
        op.drop_table(table, schema=op.get_context().version_table_schema)
