"""Fitting values to their columns at a write boundary.

SQLite stores any string in any column; PostgreSQL refuses a string longer than its VARCHAR(n) and
any NUL character, and aborts the whole transaction. Every write path that takes text from outside
(sheets, Civitai JSON, hub answers) passes its rows through :func:`fit_row` (or :func:`fit_text`),
which reads the sizes from the SQLAlchemy models, so no column size is repeated anywhere:

* NUL characters are removed from every string;
* a string longer than its column is cut to the column's length; an identity column
  (``identity=True``: a key that must stay unique) keeps a prefix and a digest of the whole value
  instead, so two long values that share a prefix stay distinct.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from sqlalchemy import Column, String
from sqlalchemy.orm import DeclarativeBase


def column_length(model: type[DeclarativeBase], name: str) -> int | None:
    """The declared length of a string column (None: unbounded or not a string column)."""
    column: Column = model.__table__.c[name]
    return column.type.length if isinstance(column.type, String) else None


def fit_text(value: str, length: int | None, *, identity: bool = False) -> str:
    """`value` without NULs and at most `length` characters (see the module docstring)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if length is None or len(value) <= length:
        return value
    if identity:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return value[: length - len(digest) - 1] + "#" + digest
    return value[:length]


@cache
def _lengths(model: type[DeclarativeBase]) -> dict[str, int | None]:
    return {c.name: column_length(model, c.name) for c in model.__table__.c}


def fit_row(model: type[DeclarativeBase], row: dict[str, Any], *, identity: tuple[str, ...] = ()) -> dict[str, Any]:
    """The row (a dict of column values, changed in place and returned) fitted to `model`'s columns;
    names in `identity` are unique keys (prefix + digest when too long)."""
    lengths = _lengths(model)
    for name, value in row.items():
        if type(value) is str and name in lengths:
            length = lengths[name]
            if "\x00" in value or (length is not None and len(value) > length):
                row[name] = fit_text(value, length, identity=name in identity)
    return row
