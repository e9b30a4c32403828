"""Pipelines: pipeline runs, step runs (status, timing, cache key, inputs, outputs) and the step cache.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = 256


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False, unique=True),
        sa.Column("pipeline", sa.String(NAME), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("graph", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resumed_from", sa.Integer),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_pipeline_runs_pipeline", "pipeline_runs", ["pipeline", "created_at"])
    op.create_table(
        "step_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline_run_id", sa.Integer, sa.ForeignKey("pipeline_runs.id"), nullable=False),
        sa.Column("node", sa.String(NAME), nullable=False),
        sa.Column("step", sa.String(NAME), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cache_key", sa.String(64)),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.BigInteger),
        sa.Column("ended_at", sa.BigInteger),
        sa.Column("wall_s", sa.Float),
        sa.Column("cpu_s", sa.Float),
        sa.Column("peak_rss_mb", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("components", sa.Text),
        sa.UniqueConstraint("pipeline_run_id", "node", name="uq_step_runs_pipeline_node"),
    )
    op.create_index("ix_step_runs_cache_key", "step_runs", ["cache_key"])
    op.create_table(
        "step_cache",
        sa.Column("cache_key", sa.String(64), primary_key=True),
        sa.Column("step_run_id", sa.Integer, sa.ForeignKey("step_runs.id"), nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("step_cache", "step_runs", "pipeline_runs"):
        op.drop_table(table)
