"""The shelter schema: device counter, shelters, households, persons, append-only stay events,
tap links, and the My Number kept apart (municipal disaster mode only).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _synced() -> list[sa.Column]:
    # Rows that travel in bundles: the device that made them and when they last changed
    # (the merge keeps the newest version of a row; ties broken by content).
    return [sa.Column("origin", sa.String(64), nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False)]


def upgrade() -> None:
    op.create_table(
        "shelter_device",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("next_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "shelter_shelter",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("capacity", sa.Integer),
        *_synced(),
    )
    op.create_table(
        "shelter_household",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("shelter_id", sa.String(64), nullable=False, index=True),
        sa.Column("head_person_id", sa.String(80)),
        sa.Column("notes", sa.String(1000), nullable=False),
        *_synced(),
    )
    op.create_table(
        "shelter_person",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("household_id", sa.String(80), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_kana", sa.String(200), nullable=False),
        sa.Column("birth_date", sa.Date),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("address_card", sa.String(400), nullable=False),
        sa.Column("address_current", sa.String(400), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("card_verified", sa.Boolean, nullable=False),
        sa.Column("needs", sa.String(200), nullable=False),
        sa.Column("consent", sa.String(100), nullable=False),
        sa.Column("dedup_key", sa.String(64), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        *_synced(),
    )
    # Append-only: rows are inserted, never updated or deleted; (device, seq) is the identity
    # that makes a merge idempotent.
    op.create_table(
        "shelter_event",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.String(80), nullable=False, index=True),
        sa.Column("shelter_id", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("staff", sa.String(100), nullable=False),
        sa.Column("from_shelter", sa.String(64)),
        sa.Column("note", sa.String(200), nullable=False),
    )
    # Local to the device that enrolled the card: never in a bundle.
    op.create_table(
        "shelter_link",
        sa.Column("link_key", sa.String(200), primary_key=True),
        sa.Column("person_id", sa.String(80), nullable=False),
        sa.Column("linked_at", sa.DateTime, nullable=False),
    )
    # Municipal disaster mode only: never exported, never in a bundle (番号法, §4.5).
    op.create_table(
        "shelter_my_number",
        sa.Column("person_id", sa.String(80), primary_key=True),
        sa.Column("my_number", sa.String(12), nullable=False),
        sa.Column("basis", sa.String(200), nullable=False),
        sa.Column("read_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("shelter_my_number", "shelter_link", "shelter_event", "shelter_person",
                  "shelter_household", "shelter_shelter", "shelter_device"):
        op.drop_table(table)
