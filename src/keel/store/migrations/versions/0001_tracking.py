"""Tracking: projects, experiments, runs, params, tags, metric chunks, datasets, artifacts, lineage.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

KEY = 250
NAME = 256


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_experiments_project_name"),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), primary_key=True),
        sa.Column("key", sa.String(KEY), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False, unique=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
        sa.Column("user", sa.String(NAME), nullable=False),
        sa.Column("host", sa.String(NAME), nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger),
        sa.Column("heartbeat_at", sa.BigInteger),
        sa.Column("heartbeat_interval", sa.Float),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("entry_point", sa.Text),
        sa.Column("parent_run_pk", sa.Integer),
        sa.Column("traceback", sa.Text),
    )
    op.create_index("ix_runs_experiment_start", "runs", ["experiment_id", "start_time"])
    op.create_index("ix_runs_status", "runs", ["status"])
    for table in ("params", "tags"):
        op.create_table(
            table,
            sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
            sa.Column("key", sa.String(KEY), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
        op.create_index(f"ix_{table}_key_run", table, ["key", "run_pk"])
    op.create_table(
        "metric_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
        sa.Column("key", sa.String(KEY), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("min_step", sa.BigInteger, nullable=False),
        sa.Column("max_step", sa.BigInteger, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("timestamps", sa.LargeBinary, nullable=False),
        sa.Column("vals", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_metric_chunks_run_key", "metric_chunks", ["run_pk", "key", "id"])
    op.create_table(
        "latest_metrics",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("key", sa.String(KEY), primary_key=True),
        sa.Column("value", sa.Float),
        sa.Column("special", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "ingest_batches",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("run_pk", sa.Integer, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("schema", sa.Text),
        sa.Column("row_count", sa.BigInteger),
        sa.Column("source", sa.Text),
        sa.Column("profile_sha256", sa.String(64)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("name", "fingerprint", name="uq_datasets_name_fingerprint"),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("context", sa.String(64), primary_key=True),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("run_pk", "name", name="uq_artifacts_run_name"),
    )
    op.create_index("ix_artifacts_sha256", "artifacts", ["sha256"])
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("run_pk", "sha256", "direction", "name", name="uq_lineage_edge"),
    )
    op.create_index("ix_lineage_sha256", "lineage_edges", ["sha256"])


def downgrade() -> None:
    for table in (
        "lineage_edges",
        "artifacts",
        "run_inputs",
        "datasets",
        "ingest_batches",
        "latest_metrics",
        "metric_chunks",
        "tags",
        "params",
        "runs",
        "experiment_tags",
        "experiments",
        "projects",
    ):
        op.drop_table(table)
