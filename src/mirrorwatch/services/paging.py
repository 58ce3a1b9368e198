"""Pagination shared by every list the web app and the API show: limit/offset with a hard maximum.

Ids are the database's integer primary keys, so a page of results can be re-fetched and linked to."""

from __future__ import annotations

from dataclasses import field
from typing import Generic, TypeVar

from mirrorwatch.errors import InvalidInput
from mirrorwatch.services.serial import read_model

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000


@read_model
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    total: int = 0
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total

    @property
    def has_prev(self) -> bool:
        return self.offset > 0


def check_window(limit: int | None, offset: int | None, *, max_limit: int = MAX_LIMIT) -> tuple[int, int]:
    """Validate a requested page window; raise InvalidInput for values a caller got wrong."""
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if limit < 1 or limit > max_limit:
        raise InvalidInput(f"limit must be between 1 and {max_limit}")
    if offset < 0 or offset > MAX_OFFSET:
        raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET}")
    return limit, offset
