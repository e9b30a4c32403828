"""Continuous model validation: evaluation by task, fairness, stability, champion/challenger, gates."""
