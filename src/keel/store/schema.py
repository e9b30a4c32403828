"""The metadata schema at the newest migration, as SQLAlchemy Core tables.

Migrations in ``keel/store/migrations/versions`` are frozen snapshots of how the schema got here;
this module is what the code reads and writes. A test checks that the two agree.

Metric points are stored in *chunks*: one row per (run, key, ingest batch) holding packed little-endian
int64 steps, int64 timestamps and float64 values. Packing keeps ingest and history reads at millions of
points per second, and stores NaN, ±inf and −0.0 bit for bit on every backend. ``latest_metrics`` keeps
each run's latest value per key (the largest step, then the newest timestamp) for search and ordering.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

# Alembic revision the code expects; bump with every new migration.
HEAD_REVISION = "0005"

KEY_LENGTH = 250
NAME_LENGTH = 256

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("project_id", "name", name="uq_experiments_project_name"),
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False, unique=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
    sa.Column("user", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("host", sa.String(NAME_LENGTH), nullable=False),
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
    # added in 0002
    sa.Column("cost_usd", sa.Float),
    sa.Column("cost_detail", sa.Text),
    sa.Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    sa.Index("ix_runs_status", "status"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_params_key_run", "key", "run_pk"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_tags_key_run", "key", "run_pk"),
)

metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
    sa.Column("key", sa.String(KEY_LENGTH), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("min_step", sa.BigInteger, nullable=False),
    sa.Column("max_step", sa.BigInteger, nullable=False),
    sa.Column("steps", sa.LargeBinary, nullable=False),
    sa.Column("timestamps", sa.LargeBinary, nullable=False),
    sa.Column("vals", sa.LargeBinary, nullable=False),
    sa.Index("ix_metric_chunks_run_key", "run_pk", "key", "id"),
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    # NULL for NaN (so comparisons never match it); ``special`` restores NaN and -0.0 exactly
    sa.Column("value", sa.Float),
    sa.Column("special", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Index("ix_latest_metrics_key_value", "key", "value"),
)

ingest_batches = sa.Table(
    "ingest_batches",
    metadata,
    sa.Column("batch_id", sa.String(32), primary_key=True),
    sa.Column("run_pk", sa.Integer, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("schema", sa.Text),
    sa.Column("row_count", sa.BigInteger),
    sa.Column("source", sa.Text),
    sa.Column("profile_sha256", sa.String(64)),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("name", "fingerprint", name="uq_datasets_name_fingerprint"),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("context", sa.String(64), primary_key=True),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("run_pk", "name", name="uq_artifacts_run_name"),
    sa.Index("ix_artifacts_sha256", "sha256"),
)

lineage_edges = sa.Table(
    "lineage_edges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("run_pk", "sha256", "direction", "name", name="uq_lineage_edge"),
    sa.Index("ix_lineage_sha256", "sha256"),
)

# ---- 0002: registry, comments, cost ------------------------------------------------------------

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("project_id", "name", name="uq_registered_models_project_name"),
)

registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk")),
    sa.Column("artifact_sha256", sa.String(64), nullable=False),
    sa.Column("artifact_name", sa.String(512)),
    sa.Column("flavor", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target_type", sa.String(16), nullable=False),
    sa.Column("target_id", sa.String(300), nullable=False),
    sa.Column("author", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_comments_target", "target_type", "target_id"),
)

# ---- 0003: pipelines -----------------------------------------------------------------------------

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # the tracking run that carries the pipeline run's artifacts, lineage and system metrics
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False, unique=True),
    sa.Column("pipeline", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("graph", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("resumed_from", sa.Integer),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_pipeline_runs_pipeline", "pipeline", "created_at"),
)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline_run_id", sa.Integer, sa.ForeignKey("pipeline_runs.id"), nullable=False),
    sa.Column("node", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("step", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cache_key", sa.String(64)),
    sa.Column("cached", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.BigInteger),
    sa.Column("ended_at", sa.BigInteger),
    sa.Column("wall_s", sa.Float),
    sa.Column("cpu_s", sa.Float),
    sa.Column("peak_rss_mb", sa.Float),
    sa.Column("error", sa.Text),
    # JSON: argument name -> sha256, output name -> {sha256, materializer metadata}
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("outputs", sa.Text, nullable=False),
    # JSON: what the cache key was made of, for `keel pipeline explain`
    sa.Column("components", sa.Text),
    sa.UniqueConstraint("pipeline_run_id", "node", name="uq_step_runs_pipeline_node"),
    sa.Index("ix_step_runs_cache_key", "cache_key"),
)

step_cache = sa.Table(
    "step_cache",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("step_run_id", sa.Integer, sa.ForeignKey("step_runs.id"), nullable=False),
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# -- server security (0004): users, roles per project, API tokens, audit log -----------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    # argon2; NULL for users who only use API tokens
    sa.Column("password_hash", sa.String(256)),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("disabled_at", sa.BigInteger),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    # a project name, or "*" for every project
    sa.Column("project", sa.String(128), primary_key=True),
    # read | write | promote | admin
    sa.Column("role", sa.String(16), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # the public half of a token (``keel_<token_id>_<secret>``); the secret is only stored hashed
    sa.Column("token_id", sa.String(32), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(256), nullable=False),
    # api | session | bootstrap
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("description", sa.String(NAME_LENGTH)),
    # sessions: sha256 of the CSRF token a browser must echo on state-changing requests
    sa.Column("csrf_hash", sa.String(64)),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger),
    sa.Column("revoked_at", sa.BigInteger),
)

# append-only (triggers refuse UPDATE and DELETE); each row's hash covers the previous row's hash
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    # ok | denied | failed
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_action_target", "action", "target", "at"),
)

# one row: the sequence number and hash of the newest audit entry (appends lock and advance it)
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# The guards and the head row also come with ``metadata.create_all`` (fresh stores skip migrations).
AUDIT_GENESIS = "0" * 64
_AUDIT_GUARDS = {
    "sqlite": [
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION keel_audit_log_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql",
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION keel_audit_log_append_only()",
    ],
}
for _dialect, _statements in _AUDIT_GUARDS.items():
    for _statement in _statements:
        _guard = sa.DDL(_statement)  # type: ignore[no-untyped-call]
        sa.event.listen(audit_log, "after_create", _guard.execute_if(dialect=_dialect))
sa.event.listen(
    audit_head,
    "after_create",
    sa.DDL(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{AUDIT_GENESIS}')"),  # type: ignore[no-untyped-call]
)

# -- login throttling (0005): one row per login attempt still counted against its user and address --
login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index("ix_login_attempts_user", "user", "at"),
    sa.Index("ix_login_attempts_client", "client", "at"),
    sa.Index("ix_login_attempts_at", "at"),
)


def join_run_project(source: sa.FromClause, run_pk: sa.ColumnElement[Any]) -> sa.Join:
    """``source`` joined to the run ``run_pk`` names, its experiment and its project, so a query can
    filter or answer by ``projects.c.name`` (which project a row belongs to is always this chain)."""
    return (
        source.join(runs, runs.c.pk == run_pk)
        .join(experiments, experiments.c.id == runs.c.experiment_id)
        .join(projects, projects.c.id == experiments.c.project_id)
    )
