"""Cache keys for steps: what a step's output depends on, hashed, and explained when it changes.

A key covers the source of the step function *and* of the local helpers it calls (found by walking
its code objects), its parameters (canonical JSON), the content hashes of its inputs and a declared
environment. :func:`explain` compares the components of two keys in words.

    >>> key = cache_key(train, {"lr": 0.1}, {"data": "ab12..."}, {"python": "3.11"})
    >>> key.digest[:12], sorted(key.components)
    ('5f0c3e…', ['environment', 'inputs', 'params', 'sources', 'step'])
    >>> explain(old.components, key.components)
    ['source of helper `normalize` changed', 'param lr: 0.05 → 0.1']

Helpers count when they are functions or classes that the code names (directly, through a module
attribute such as ``helpers.normalize``, or as closure variables) and that are defined in a module of
the step's own top-level package or in ``__main__``, never in site-packages. Functions called only
through objects (``self.method``) or looked up dynamically are not seen.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import linecache
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CacheKey", "cache_key", "canonical", "explain", "source_hashes"]

_SKIP_DIRS = ("site-packages", "dist-packages")


@dataclass(frozen=True)
class CacheKey:
    """A step's cache key: ``digest`` (sha256 hex) and the ``components`` it was computed from."""

    digest: str
    components: dict[str, Any] = field(compare=False)

    def __str__(self) -> str:
        return self.digest


def _name(obj: Any) -> str:
    return f"{_module_name(getattr(obj, '__module__', None) or '__main__')}:{obj.__qualname__}"


def _module_name(module: str) -> str:
    """``module``, except that a script run as ``__main__`` gets the name it is imported under.

    ``python flow.py`` defines its steps in ``__main__``; ``keel pipeline run flow:pipe`` imports the
    same file as ``flow``. Keys name functions by module, so without this the same code would miss
    the cache it made the other way. The name comes from ``python -m``'s spec, else from the file
    (with the packages above it that have an ``__init__.py``); code with no file keeps ``__main__``.
    """
    if module not in ("__main__", "__mp_main__"):
        return module
    main = sys.modules.get(module)
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name not in ("__main__", "__mp_main__"):
        return str(spec.name)
    file = getattr(main, "__file__", None)
    if not file:
        return module
    path = Path(file).resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def _is_local(obj: Any, package: str) -> bool:
    if isinstance(obj, types.ModuleType):
        module_name = obj.__name__
    else:
        module_name = getattr(obj, "__module__", None) or ""
    if module_name != "__main__" and module_name.partition(".")[0] != package:
        return False
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None) or ""
    return not any(part in path for part in _SKIP_DIRS)


def _code_objects(obj: Any) -> Iterator[types.CodeType]:
    """The code objects of a function (nested ones too) or of every method of a class."""
    roots: list[Any] = []
    if isinstance(obj, type):
        for value in vars(obj).values():
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            elif isinstance(value, property):
                roots.extend(f for f in (value.fget, value.fset, value.fdel) if f is not None)
                continue
            if isinstance(value, types.FunctionType):
                roots.append(value)
    else:
        roots.append(obj)
    stack = [f.__code__ for f in roots if hasattr(f, "__code__")]
    while stack:
        code = stack.pop()
        yield code
        stack.extend(const for const in code.co_consts if isinstance(const, types.CodeType))


def _function_source(fn: types.FunctionType) -> str | None:
    """The lines of ``fn``'s file from its first line (its first decorator) to the last line any of
    its code (nested functions too) spans, or None without a source file.

    ``inspect.getsource`` finds the end of the block with ``tokenize``, whose regular expressions cost
    a short process (a cached ``keel pipeline run``) more than the rest of its cache lookups. The
    code's own line table ends at the last line of its last statement, so the text differs from
    ``getsource`` only in comments and blank lines after that statement, which change nothing the
    step computes; every line the code was compiled from is in it.
    """
    code = fn.__code__
    file = code.co_filename
    linecache.checkcache(file)  # a file changed since it was first read is read again
    lines = linecache.getlines(file, fn.__globals__)
    first = code.co_firstlineno
    if not lines or first > len(lines):
        return None
    last = first
    for nested in _code_objects(fn):
        for _start, _end, line in nested.co_lines():
            if line is not None and line > last:
                last = line
        for _line, end_line, _column, _end_column in nested.co_positions():
            if end_line is not None and end_line > last:
                last = end_line
    return "".join(lines[first - 1 : last])


def _source(obj: Any) -> str:
    if isinstance(obj, types.FunctionType):
        text = _function_source(obj)
        if text is not None:
            return text
    try:
        file = inspect.getsourcefile(obj)
        if file:
            linecache.checkcache(file)  # a file changed since it was first read is read again
        return inspect.getsource(obj)
    except (OSError, TypeError):
        # no source on disk (exec'd code, a REPL): fall back to the compiled code itself
        parts = [_name(obj)]
        for code in _code_objects(obj):
            parts.append(code.co_code.hex())
            parts.append(repr([c for c in code.co_consts if not isinstance(c, types.CodeType)]))
        return "\n".join(parts)


def _referenced(obj: Any, package: str) -> Iterator[Any]:
    """Local functions and classes named by ``obj``'s code."""
    names: set[str] = set()
    for code in _code_objects(obj):
        names.update(code.co_names)
    if isinstance(obj, type):
        module = sys.modules.get(obj.__module__)
        scope: Mapping[str, Any] = vars(module) if module else {}
    else:
        scope = getattr(obj, "__globals__", {})
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                yield from _candidates(cell.cell_contents, names, package)
            except ValueError:  # an empty cell
                pass
    for name in sorted(names):
        if name in scope:
            yield from _candidates(scope[name], names, package)


def _candidates(value: Any, names: set[str], package: str) -> Iterator[Any]:
    from keel.pipelines.steps import Step

    target = value.fn if isinstance(value, Step) else value
    if isinstance(target, types.FunctionType | type):
        if _is_local(target, package):
            yield target
    elif isinstance(target, types.ModuleType) and _is_local(target, package):
        # ``helpers.normalize(x)``: the attribute names sit in the same co_names
        for name in sorted(names):
            attr = getattr(target, name, None)
            if isinstance(attr, types.FunctionType | type) and _is_local(attr, package):
                yield attr


def source_hashes(fn: Callable[..., Any]) -> dict[str, str]:
    """sha256 of the source of ``fn`` and of every local helper it reaches, keyed ``module:qualname``.

    The walk is iterative with a visited set, so recursion and mutual recursion are fine.
    """
    root: Any = getattr(fn, "fn", fn)
    module = getattr(root, "__module__", None) or "__main__"
    package = module.partition(".")[0]
    hashes: dict[str, str] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        key = _name(obj)
        if key in hashes:
            continue
        hashes[key] = hashlib.sha256(_source(obj).encode()).hexdigest()
        stack.extend(ref for ref in _referenced(obj, package) if _name(ref) not in hashes)
    return hashes


def canonical(value: Any) -> Any:
    """``value`` as JSON-ready data that is equal exactly when the values are (tuples as lists)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value  # json writes floats by repr, and NaN/Infinity as stable tokens
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return {"$set": sorted((canonical(item) for item in value), key=_dumps)}
    module = type(value).__module__.partition(".")[0]
    if module == "numpy":
        if hasattr(value, "tobytes") and hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
            digest = hashlib.sha256(value.tobytes()).hexdigest()
            return {"$ndarray": digest, "dtype": str(value.dtype), "shape": list(value.shape)}
        if hasattr(value, "item"):
            return canonical(value.item())
    if isinstance(value, bytes):
        return {"$bytes": hashlib.sha256(value).hexdigest()}
    # last resort: repr (an unstable repr only costs cache misses, never a wrong hit)
    return {"$repr": f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"}


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True, separators=(",", ":"))


def cache_key(
    step: Any,
    params: Mapping[str, Any],
    input_hashes: Mapping[str, str],
    environment: Mapping[str, Any] | None = None,
    *,
    sources: Mapping[str, str] | None = None,
) -> CacheKey:
    """The cache key of one step call; pass ``sources`` to reuse :func:`source_hashes` of the step."""
    fn: Any = getattr(step, "fn", step)
    components = {
        "step": _name(fn),
        "sources": dict(sources if sources is not None else source_hashes(fn)),
        "params": {str(k): canonical(v) for k, v in params.items()},
        "inputs": dict(input_hashes),
        "environment": {str(k): canonical(v) for k, v in (environment or {}).items()},
    }
    return CacheKey(hashlib.sha256(_dumps(components).encode()).hexdigest(), components)


def _show(value: Any) -> str:
    return "(none)" if value is _MISSING else _dumps(value)


_MISSING = object()


def explain(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why two keys differ, from their components, in words; ``[]`` when they are the same.

    >>> explain(old.components, new.components)
    ['source of step `mod:train` changed', 'param lr: 0.1 → 0.2', 'input `data` changed']
    """
    reasons: list[str] = []
    if old.get("step") != new.get("step"):
        reasons.append(f"step function changed from `{old.get('step')}` to `{new.get('step')}`")
    old_sources, new_sources = old.get("sources", {}), new.get("sources", {})
    main = new.get("step")
    for key in sorted(set(old_sources) | set(new_sources)):
        short = key.partition(":")[2] or key
        what = f"step `{short}`" if key == main else f"helper `{short}`"
        if key not in old_sources:
            reasons.append(f"{what} is newly called")
        elif key not in new_sources:
            reasons.append(f"{what} is no longer called")
        elif old_sources[key] != new_sources[key]:
            reasons.append(f"source of {what} changed")
    for section, label in (("params", "param"), ("environment", "environment")):
        before, after = old.get(section, {}), new.get(section, {})
        for key in sorted(set(before) | set(after)):
            a, b = before.get(key, _MISSING), after.get(key, _MISSING)
            if a is _MISSING or b is _MISSING or _dumps(a) != _dumps(b):
                reasons.append(f"{label} {key}: {_show(a)} → {_show(b)}")
    old_inputs, new_inputs = old.get("inputs", {}), new.get("inputs", {})
    for key in sorted(set(old_inputs) | set(new_inputs)):
        if key not in old_inputs:
            reasons.append(f"input `{key}` is new")
        elif key not in new_inputs:
            reasons.append(f"input `{key}` is gone")
        elif old_inputs[key] != new_inputs[key]:
            reasons.append(f"input `{key}` changed")
    return reasons
