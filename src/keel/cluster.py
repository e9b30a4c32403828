"""Ray, connected only when asked (``pip install 'keel-mlops[ray]'``).

Pipelines run steps as Ray tasks and data profiles and validates partitions as Ray tasks; both
connect through here, so neither capability reaches into the other for it. Ray is reached at
``RAY_ADDRESS`` when set, else a local Ray is started bound to 127.0.0.1 with the dashboard off.
"""

from __future__ import annotations

import os
from typing import Any

from keel.errors import MissingDependencyError

__all__ = ["connect_ray"]


def connect_ray() -> Any:
    """The ``ray`` module, initialised (once) against ``RAY_ADDRESS`` or a local instance."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "The Ray executor") from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(
                address="local",
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
                configure_logging=False,
            )
    return ray
