"""Columns that identify rows rather than describe them: ids, keys, emails, event times.

Such a column differs between any two samples by construction — new orders get new ids, today's
events carry today's timestamps — so it "drifts" every time, and counting it in a dataset's drift
verdict only dilutes the columns that can really drift. A suite that pins its exact values (a length
range of the emails seen, ``unique`` on a date) fails on the next sample for the same reason.

They are recognised from a profile alone (so a stored reference profile is enough):

- text (strings, categoricals): at least 95 % of the values distinct;
- integers: at least 95 % distinct, and in increasing order or packed into a range not much wider
  than the number of values (sequence numbers, shuffled or not; a measurement such as a price in
  cents spreads over a far wider range);
- dates and datetimes: in increasing order (load and event times), or at least 95 % distinct
  (near-unique timestamps).

Floats are never id-like (a continuous measurement is all-distinct too), and neither is a column with
fewer than 20 values (three different words are not identifiers).
"""

from __future__ import annotations

import math

from keel.data.profiles import CATEGORICAL, NUMERIC, STRING, TEMPORAL, ColumnProfile

__all__ = ["ID_SHARE", "MIN_VALUES", "id_like"]

#: share of distinct values from which a text or integer column may identify rows
ID_SHARE = 0.95
#: fewer values than this never make a column id-like
MIN_VALUES = 20
#: an integer column whose values span at most this many times their number is packed like an id
PACKED_SPAN = 2


def id_like(column: ColumnProfile) -> str | None:
    """Why ``column`` looks like a row identifier (``"id-like: 100% distinct"``), or None."""
    values = column.non_null_count
    if values < MIN_VALUES:
        return None
    distinct = column.distinct_count
    share = distinct / values if math.isfinite(distinct) else 0.0
    distinct_text = f"{math.floor(share * 100)}% distinct"
    kind = column.inferred_type
    if column.kind in (STRING, CATEGORICAL):
        return f"id-like: {distinct_text}" if share >= ID_SHARE else None
    if column.kind == NUMERIC and kind == "integer":
        if share < ID_SHARE:
            return None
        if column.monotonic:
            return f"id-like: increasing, {distinct_text}"
        span = column.moments.max - column.moments.min + 1
        return f"id-like: {distinct_text} within {span:,.0f} values" if span <= PACKED_SPAN * values else None
    if column.kind == TEMPORAL and kind in ("date", "datetime"):
        if column.monotonic and column.moments.max > column.moments.min:
            return f"id-like: {kind}s in increasing order"
        if share >= ID_SHARE:
            return f"id-like: {distinct_text} {kind}s"
    return None
