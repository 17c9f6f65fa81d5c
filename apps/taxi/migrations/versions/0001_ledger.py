"""The マイタク city ledger: registrations (one per card), rides (one per card receipt), the
terminals that synced and the taxi company each claims for.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per personalised card: a new card for the same resident is a new rider id, so
    # a lost card is stopped without stopping its successor. ``resident`` is the city's
    # opaque resident key (宛名番号), never the My Number; the move-out and death feed names it.
    op.create_table(
        "taxi_rider",
        sa.Column("rider_id", sa.String(16), primary_key=True),
        sa.Column("resident", sa.String(32), nullable=False, index=True),
        sa.Column("category", sa.Integer, nullable=False),
        sa.Column("yearly_quota", sa.Integer, nullable=False),
        sa.Column("link_key", sa.String(200), index=True),
        sa.Column("registered_at", sa.DateTime, nullable=False),
        sa.Column("stopped_at", sa.DateTime),
        sa.Column("stop_reason", sa.String(32)),
    )
    op.create_table(
        "taxi_terminal",
        sa.Column("terminal_id", sa.String(8), primary_key=True),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("last_sync", sa.DateTime, nullable=False),
    )
    # The primary key is the de-duplication: a receipt uploaded twice (a retried sync, a
    # replay) can never count twice, whatever the interleaving of the terminals.
    op.create_table(
        "taxi_ride",
        sa.Column("rider_id", sa.String(16), primary_key=True),
        sa.Column("sequence", sa.Integer, primary_key=True),
        sa.Column("terminal_id", sa.String(8), nullable=False, index=True),
        sa.Column("terminal_sequence", sa.Integer, nullable=False),
        sa.Column("ride_at", sa.DateTime, nullable=False),
        sa.Column("fiscal_year", sa.Integer, nullable=False),
        sa.Column("month", sa.String(6), nullable=False),
        sa.Column("fare", sa.Integer, nullable=False),
        sa.Column("riders", sa.Integer, nullable=False),
        sa.Column("subsidy", sa.Integer, nullable=False),
        sa.Column("receipt", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("flag", sa.String(64)),
    )
    op.create_index("taxi_ride_by_month", "taxi_ride", ["month", "terminal_id"])


def downgrade() -> None:
    for table in ("taxi_ride", "taxi_terminal", "taxi_rider"):
        op.drop_table(table)
