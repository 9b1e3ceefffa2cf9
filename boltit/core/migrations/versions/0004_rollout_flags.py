"""rollout controls as runtime flags: a numeric value beside a flag's on/off (canary percent)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feature_flags", sa.Column("value", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("feature_flags", "value")  # SQLite >= 3.35 drops in place
