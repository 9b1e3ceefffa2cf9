"""gradual rollouts: one row per rollout, its steps, current share and outcome

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("champion_version", sa.String(length=32), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("min_rows", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("running_model", sa.String(length=256), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rollouts_model_started", "rollouts", ["model_name", "started_at"])
    # Unique while running only: the column is NULL once a rollout ends, and both databases
    # let any number of NULLs through a unique index.
    op.create_index("ux_rollouts_running_model", "rollouts", ["running_model"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_rollouts_running_model", table_name="rollouts")
    op.drop_index("ix_rollouts_model_started", table_name="rollouts")
    op.drop_table("rollouts")
