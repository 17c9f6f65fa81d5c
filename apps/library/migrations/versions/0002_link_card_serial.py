"""The chip's card serial beside each card link, so a tap can refuse a genuine chip that
carries another card's authentication certificate (docs/recipes.md, ``require_link``).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: links made before this revision, or by checks that cannot read the serial,
    # keep matching on the certificate alone.
    op.add_column("library_link", sa.Column("card_serial", sa.String(32)))


def downgrade() -> None:
    op.drop_column("library_link", "card_serial")
