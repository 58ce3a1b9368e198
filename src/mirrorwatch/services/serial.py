"""Read models and their one serialiser.

A read model is a dataclass declared with :func:`read_model`. The same class is what the pages
render, what the CLI prints and what the JSON API returns: FastAPI builds the OpenAPI schema from it
(pydantic reads stdlib dataclasses), and :func:`to_json` turns one into JSON-ready data the same way
the API does. Times are UTC, written with a Z (:data:`Utc`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, TypeVar, dataclass_transform

from pydantic import ConfigDict, PlainSerializer, TypeAdapter, with_config

T = TypeVar("T")


def _utc(d: datetime) -> str:
    return d.isoformat() + "Z" if d.tzinfo is None else d.isoformat()


Utc = Annotated[datetime, PlainSerializer(_utc, return_type=str, when_used="json")]

# In the API's response schemas every field is present (also those with a default).
READ_MODEL_CONFIG = ConfigDict(json_schema_serialization_defaults_required=True)


@dataclass_transform()
def read_model(cls: type[T]) -> type[T]:
    """Declare a read model: a dataclass whose schema the API publishes as is."""
    return with_config(READ_MODEL_CONFIG)(dataclass(cls))


@cache
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


def to_json(obj: Any, tp: Any = None) -> Any:
    """JSON-ready data (dicts, lists, strings, numbers) for a read model, a list of them, or a Page.

    tp is the type to serialise as; by default the object's own class (give it for lists)."""
    return _adapter(tp if tp is not None else type(obj)).dump_python(obj, mode="json")


def to_json_bytes(obj: Any, tp: Any = None) -> bytes:
    """:func:`to_json` written as compact UTF-8 JSON text, as Starlette's JSONResponse writes it (for
    hot endpoints: pydantic writes the text itself, about twice as fast as dumping the data)."""
    return _adapter(tp if tp is not None else type(obj)).dump_json(obj)
