"""review page: what its queues need (indexes, reviewer columns)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE: a batch copy of ``tickets`` would take as long as the store is big.
    op.add_column("tickets", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tickets", sa.Column("reviewed_by", sa.String(length=128), nullable=True))
    # The queues list unreviewed tickets by (confidence, id) or by id, and count them.
    op.create_index("ix_tickets_review_confidence", "tickets", ["reviewed_at", "confidence", "id"])
    op.create_index("ix_tickets_review_id", "tickets", ["reviewed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_review_id", table_name="tickets")
    op.drop_index("ix_tickets_review_confidence", table_name="tickets")
    op.drop_column("tickets", "reviewed_by")  # SQLite >= 3.35 drops in place
    op.drop_column("tickets", "reviewed_at")
