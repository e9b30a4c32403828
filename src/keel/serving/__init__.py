"""Model serving: ``keel serve`` — one process, many models, behind keel's validation and metrics."""
