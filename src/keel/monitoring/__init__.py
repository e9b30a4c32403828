"""Production monitoring and alerts: prediction windows, drift, one rule engine and its channels."""
