"""Tracking: runs, metrics, system metrics and cost, lineage and the registry client."""
