"""The library schema: members, card links, items, loans, holds.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_member",
        sa.Column("user_number", sa.String(16), primary_key=True),
        sa.Column("registered_at", sa.DateTime, nullable=False),
    )
    # A card link: issuer key id + auth certificate serial (CardIdentity.link_key), never a
    # name, address or My Number. Superseded links stay for the audit of re-enrolments.
    op.create_table(
        "library_link",
        sa.Column("link_key", sa.String(200), primary_key=True),
        sa.Column("user_number", sa.String(16), sa.ForeignKey("library_member.user_number"),
                  nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("document", sa.String(64)),
        sa.Column("not_after", sa.DateTime, nullable=False),
        sa.Column("linked_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "library_item",
        sa.Column("barcode", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("item_type", sa.String(8), nullable=False),
    )
    # One row per item out: the primary key on the barcode makes a second loan of the same
    # item impossible whatever the interleaving. The row is deleted on return (§2.8).
    op.create_table(
        "library_loan",
        sa.Column("barcode", sa.String(32), sa.ForeignKey("library_item.barcode"),
                  primary_key=True),
        sa.Column("user_number", sa.String(16), sa.ForeignKey("library_member.user_number"),
                  nullable=False, index=True),
        sa.Column("issued_at", sa.DateTime, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("renewals", sa.Integer, nullable=False),
    )
    op.create_table(
        "library_hold",
        sa.Column("barcode", sa.String(32), sa.ForeignKey("library_item.barcode"),
                  primary_key=True),
        sa.Column("user_number", sa.String(16), sa.ForeignKey("library_member.user_number"),
                  primary_key=True),
        sa.Column("placed_at", sa.DateTime, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("library_hold", "library_loan", "library_item", "library_link",
                  "library_member"):
        op.drop_table(table)
