"""Hyper-parameter sweeps on Optuna: trials are runs in one sweep group."""
