"""Settings: where keel stores things and how it behaves.

Precedence, highest first:

1. arguments passed in code (``keel.Client(tracking_uri=...)``, ``Settings.load(overrides={...})``)
2. ``KEEL_*`` environment variables (``KEEL_TRACKING_URI``, ``KEEL_PROJECT``, ...)
3. ``keel.toml`` in the project folder (the nearest one found walking up from the working directory)
4. ``[tool.keel]`` in ``pyproject.toml`` (likewise; ignored when a ``keel.toml`` sits beside it)
5. built-in defaults

Nested tables (``[naming]``, ``[prices]``) merge key by key across levels. An environment variable
names a nested key with a double underscore: ``KEEL_PRICES__CPU_CORE_HOUR=0.05``.

A few ``KEEL_*`` variables are not settings (:data:`OTHER_VARIABLES`: ``KEEL_USER``,
``KEEL_PIPELINE_CACHE``, the test suite's ``KEEL_TEST_*``); each is read where it acts. An unknown
``KEEL_*`` variable is a warning, not an error: the environment is shared with other programs and
with other versions of keel, and a stray variable must not stop every command.
An unknown key in ``keel.toml`` / ``[tool.keel]`` stays an error: that file is keel's alone.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.errors import ConfigError
from keel.records import Frozen

__all__ = ["Prices", "Settings", "find_keel_dir", "find_project_root", "require_project"]

STORE_DIR_NAME = ".keel"

#: ``KEEL_*`` environment variables that are not settings, each read by the code it concerns
OTHER_VARIABLES: Mapping[str, str] = {
    "KEEL_USER": "the user name recorded on runs and models (default: USER, LOGNAME, the login name)",
    "KEEL_PIPELINE_CACHE": "false turns the pipeline step cache off for every pipeline run",
    "KEEL_SEARCH_TIMEOUT": "seconds PostgreSQL may spend on one run search before cancelling it (default 30)",
}

_log = logging.getLogger("keel")
_warned: set[str] = set()


_DEFAULT_GPU_HOUR = {
    "H200": 4.50,
    "H100": 3.90,
    "A100": 2.90,
    "L40S": 1.90,
    "A10G": 1.00,
    "L4": 0.80,
    "T4": 0.50,
}


class Prices(Frozen):
    """Price table for cost estimates, in USD. Defaults are on-demand cloud list prices, rounded."""

    cpu_core_hour: float
    memory_gb_hour: float
    gpu_hour_default: float
    #: per GPU model, matched case-insensitively as a substring of the NVML name ("A100", "H100")
    gpu_hour: Mapping[str, float]

    def __init__(
        self,
        cpu_core_hour: float = 0.04,
        memory_gb_hour: float = 0.005,
        gpu_hour_default: float = 2.50,
        gpu_hour: Mapping[str, float] | None = None,
    ) -> None:
        self._set(
            cpu_core_hour=cpu_core_hour,
            memory_gb_hour=memory_gb_hour,
            gpu_hour_default=gpu_hour_default,
            gpu_hour=dict(_DEFAULT_GPU_HOUR) if gpu_hour is None else gpu_hour,
        )

    def for_gpu(self, gpu_name: str) -> float:
        """USD per hour for a GPU as NVML names it; a model matches as a whole word ("L4" is not
        "L40S"), longest model names first; unknown GPUs cost ``gpu_hour_default``."""
        import re

        for model, price in sorted(self.gpu_hour.items(), key=lambda kv: -len(kv[0])):
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(model)}(?![A-Za-z0-9])", gpu_name, re.IGNORECASE):
                return float(price)
        return self.gpu_hour_default


class Settings(Frozen):
    tracking_uri: str | None
    #: API token for a keel server (``http(s)://`` tracking URI); a secret, so never shown in repr
    tracking_token: str | None
    artifact_uri: str | None
    #: endpoint of an S3-compatible server for s3:// artifact stores (MinIO, Ceph, moto...)
    s3_endpoint_url: str | None
    project: str
    #: seconds between run heartbeats; a RUNNING run silent for two intervals is CRASHED
    heartbeat_interval: float
    #: seconds between appends of logged points to the crash-safe spool (bounds loss on kill -9)
    flush_interval: float
    #: seconds between commits of spooled points to the metadata store
    commit_interval: float
    #: seconds the end of a run (and of the process) waits for a store that cannot be reached before
    #: it leaves the rest in the spool folder for later and goes on
    offline_wait: float
    system_metrics: bool
    system_metrics_interval: float
    spool_dir: str | None
    naming: Mapping[str, Any]
    prices: Prices
    #: where the settings came from, for `keel config` and error messages
    sources: tuple[str, ...]

    _hidden = frozenset({"tracking_token"})

    def __init__(
        self,
        tracking_uri: str | None = None,
        tracking_token: str | None = None,
        artifact_uri: str | None = None,
        s3_endpoint_url: str | None = None,
        project: str = "default",
        heartbeat_interval: float = 10.0,
        flush_interval: float = 0.05,
        commit_interval: float = 0.5,
        offline_wait: float = 10.0,
        system_metrics: bool = True,
        system_metrics_interval: float = 5.0,
        spool_dir: str | None = None,
        naming: Mapping[str, Any] | None = None,
        prices: Prices | None = None,
        sources: tuple[str, ...] = (),
    ) -> None:
        self._set(
            tracking_uri=tracking_uri,
            tracking_token=tracking_token,
            artifact_uri=artifact_uri,
            s3_endpoint_url=s3_endpoint_url,
            project=project,
            heartbeat_interval=heartbeat_interval,
            flush_interval=flush_interval,
            commit_interval=commit_interval,
            offline_wait=offline_wait,
            system_metrics=system_metrics,
            system_metrics_interval=system_metrics_interval,
            spool_dir=spool_dir,
            naming={} if naming is None else naming,
            prices=Prices() if prices is None else prices,
            sources=sources,
        )

    @classmethod
    def load(cls, start: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
        start = (start or Path.cwd()).resolve()
        merged: dict[str, Any] = {}
        sources: list[str] = []
        for path, table in _file_tables(start):
            _merge(merged, table)
            sources.append(str(path))
        env = _env_table(os.environ, known=set(cls.field_names()) - {"sources"})
        if env:
            _merge(merged, env)
            sources.append("environment (KEEL_*)")
        if overrides:
            _merge(merged, {k: v for k, v in overrides.items() if v is not None})
            sources.append("arguments")
        return cls._from_table(merged, tuple(sources))

    @classmethod
    def _from_table(cls, table: dict[str, Any], sources: tuple[str, ...]) -> Settings:
        fields = {name: cls.__annotations__[name] for name in cls.field_names()}
        kwargs: dict[str, Any] = {"sources": sources}
        for key, value in table.items():
            if key not in fields or key == "sources":
                known = ", ".join(sorted(k for k in fields if k != "sources"))
                raise ConfigError(f"unknown keel setting {key!r} (from {_describe(sources)}); known: {known}")
            if key == "prices":
                kwargs[key] = _prices(value)
            elif key == "naming":
                if not isinstance(value, Mapping):
                    raise ConfigError("the [naming] setting must be a table")
                kwargs[key] = dict(value)
            else:
                kwargs[key] = _coerce(key, value, fields[key])
        settings = cls(**kwargs)
        for name in (
            "heartbeat_interval",
            "flush_interval",
            "commit_interval",
            "system_metrics_interval",
            "offline_wait",
        ):
            if not getattr(settings, name) > 0:  # "not > 0" also refuses NaN
                raise ConfigError(f"setting {name} must be a positive number of seconds")
        return settings


def _describe(sources: tuple[str, ...]) -> str:
    return ", ".join(sources) or "defaults"


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    text = str(annotation)
    try:
        if "float" in text:
            return float(value)
        if "bool" in text:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        return None if value is None or value == "" else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {key} has an invalid value {value!r} (expected {text})") from None


def _prices(value: Any) -> Prices:
    if not isinstance(value, Mapping):
        raise ConfigError("the [prices] setting must be a table")
    base = Prices()
    gpu = dict(base.gpu_hour)
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        if key == "gpu_hour":
            if not isinstance(item, Mapping):
                raise ConfigError("prices.gpu_hour must be a table of GPU model = USD per hour")
            try:
                gpu.update({str(k).upper(): float(v) for k, v in item.items()})
            except (TypeError, ValueError):
                raise ConfigError(f"prices.gpu_hour values must be USD per hour, not {item!r}") from None
        elif key in {"cpu_core_hour", "memory_gb_hour", "gpu_hour_default"}:
            try:
                kwargs[key] = float(item)
            except (TypeError, ValueError):
                raise ConfigError(f"prices.{key} must be a number, not {item!r}") from None
        else:
            raise ConfigError(
                f"unknown price {key!r}; known: cpu_core_hour, memory_gb_hour, gpu_hour_default, gpu_hour"
            )
    return Prices(gpu_hour=gpu, **kwargs)


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value


def _env_table(environ: Mapping[str, str], known: set[str]) -> dict[str, Any]:
    """The settings the ``KEEL_*`` variables give; other and unknown ``KEEL_*`` names are skipped
    (an unknown one with a warning, once per process)."""
    table: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("KEEL_") or name.startswith("KEEL_TEST_") or name in OTHER_VARIABLES:
            continue
        path = name[5:].lower().split("__")
        if path[0] not in known:
            if name not in _warned:
                _warned.add(name)
                settings = ", ".join(f"KEEL_{k.upper()}" for k in sorted(known))
                _log.warning(
                    "keel: ignoring the environment variable %s: it is not a keel setting (settings: %s; "
                    "other variables: %s); unset it or fix its name",
                    name,
                    settings,
                    ", ".join(OTHER_VARIABLES),
                )
            continue
        node = table
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return table


def _file_tables(start: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Config tables from the nearest keel.toml / pyproject.toml, lowest precedence first."""
    for folder in (start, *start.parents):
        keel_toml = folder / "keel.toml"
        pyproject = folder / "pyproject.toml"
        found: list[tuple[Path, dict[str, Any]]] = []
        if pyproject.is_file():
            tool = _read_toml(pyproject).get("tool", {}).get("keel")
            if tool is not None:
                found.append((pyproject, tool))
        if keel_toml.is_file():
            found = [(keel_toml, _read_toml(keel_toml))]
        if found:
            return found
    return []


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}; fix the TOML syntax") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def find_keel_dir(start: Path | None = None) -> Path | None:
    """The nearest existing ``.keel`` folder at or above ``start``, like git finds ``.git``."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / STORE_DIR_NAME
        if candidate.is_dir():
            return candidate
    return None


def find_project_root(start: Path | None = None) -> Path:
    """Where a new ``.keel`` folder goes: beside the nearest keel.toml, pyproject.toml or .git, else here."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in ("keel.toml", "pyproject.toml", ".git")):
            return folder
    return start


def require_project(start: Path | None = None) -> None:
    """Raise :class:`ConfigError` unless a tracking URI is configured, a ``.keel/keel.db`` exists
    at or above ``start`` (the working directory by default), or a ``keel.toml`` there declares a
    keel project (whose store may simply not be made yet).

    Reading commands (``keel runs list``, ``keel ui``) call it before they open a store: opening one
    creates it, which is right for a training script and wrong for a reader started in a folder
    without a project, or in the home folder, where the new ``.keel`` would then silently serve
    every project below that has none of its own."""
    if Settings.load().tracking_uri:
        return  # KEEL_TRACKING_URI or keel.toml names the store: the user chose it
    keel_dir = find_keel_dir(start)
    if keel_dir is not None and (keel_dir / "keel.db").is_file():
        return
    if (find_project_root(start) / "keel.toml").is_file():
        return  # the user declared a keel project here: its store belongs beside that file
    here = (start or Path.cwd()).resolve()
    raise ConfigError(
        f"no keel project found from {here} upwards (looked for .keel/keel.db and keel.toml); run a training "
        "script or `keel quickstart` here first, or set KEEL_TRACKING_URI"
    )
