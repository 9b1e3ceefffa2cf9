"""feedback history: every label a ticket was given, who sent it, and new categories

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=128), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("new_category", sa.Boolean(), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_feedback_ticket_id", "ticket_feedback", ["ticket_id"])
    # Plain ALTER TABLE on both databases: a batch copy of ``tickets`` on SQLite would trip
    # the foreign keys that point at it, and take as long as the store is big.
    op.add_column("tickets", sa.Column("feedback_client", sa.String(length=128), nullable=True))
    op.add_column(
        "tickets",
        sa.Column("feedback_new_category", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # Labels given before this revision become the first entry of each ticket's history.
    op.execute(
        "INSERT INTO ticket_feedback (ticket_id, category, priority, new_category, kind, at) "
        "SELECT id, feedback_category, feedback_priority, false, 'feedback', feedback_at "
        "FROM tickets WHERE feedback_category IS NOT NULL AND feedback_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_feedback_ticket_id", table_name="ticket_feedback")
    op.drop_table("ticket_feedback")
    op.drop_column("tickets", "feedback_new_category")  # SQLite >= 3.35 drops in place
    op.drop_column("tickets", "feedback_client")
