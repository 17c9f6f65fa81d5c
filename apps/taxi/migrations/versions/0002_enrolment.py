"""How the counter checked the holder of each registered card: ``pin`` (strict enrolment) or
``staff: <document kind>`` (the flagged staff path of a 顔認証 card).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("taxi_rider", sa.Column("enrolment", sa.String(80)))


def downgrade() -> None:
    op.drop_column("taxi_rider", "enrolment")
