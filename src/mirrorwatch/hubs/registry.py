"""The one list of hubs. Adding a hub: one subpackage exposing `SPEC`, and one line below.

The CLI (`mirrorwatch scan NAME`, `recheck`), the web pages (links, labels), reports and the
dashboard all read hubs from here; nothing else names a hub."""

from __future__ import annotations

from mirrorwatch.errors import InvalidInput
from mirrorwatch.hubs import civitai, huggingface, localdir, s3
from mirrorwatch.hubs.base import HubSpec

# The first hub is the default one (recheck's default, the dashboard's unlabelled uploaders).
HUBS: dict[str, HubSpec] = {spec.name: spec for spec in (huggingface.SPEC, localdir.SPEC, civitai.SPEC, s3.SPEC)}


def default_hub() -> HubSpec:
    return next(iter(HUBS.values()))


def hub_spec(name: str) -> HubSpec:
    """The registered hub called `name`; InvalidInput (naming the known ones) otherwise."""
    spec = HUBS.get(name)
    if spec is None:
        raise InvalidInput(f"unknown hub {name!r} (known: {', '.join(HUBS)})")
    return spec


def hub_label(name: str) -> str:
    """A hub's name for people; an unknown (e.g. legacy) hub name is shown as it is."""
    spec = HUBS.get(name)
    return spec.label if spec is not None else name


def web_url(hub: str, repo_id: str, path: str | None = None, repo_type: str | None = None) -> str | None:
    """Where a person opens a repo (or a file in it) of a repo type on its hub; None when the hub has
    no pages."""
    spec = HUBS.get(hub)
    if spec is None:
        return None
    return spec.links.file_url(repo_id, path, repo_type) if path else spec.links.repo_url(repo_id, repo_type)


# How people read a repo type ("Space" as Hugging Face writes it).
REPO_TYPE_LABELS = {"model": "model", "dataset": "dataset", "space": "Space", "folder": "folder"}


def repo_type_label(hub: str, repo_type: str | None, *, default_too: bool = True) -> str:
    """A repo type for people: "" for a hub with one type (or, without `default_too`, for the hub's
    default type, so model repos read as before); the label otherwise ("dataset", "Space")."""
    types = repo_types(hub)
    if not repo_type or len(types) < 2 or (not default_too and repo_type == types[0]):
        return ""
    return REPO_TYPE_LABELS.get(repo_type, repo_type)


def repo_types(hub: str) -> tuple[str, ...]:
    """The repo types of a hub (its first is its default); ("model",) for an unknown hub."""
    spec = HUBS.get(hub)
    return spec.repo_types if spec is not None else ("model",)


def uploader_url(hub: str, author: str) -> str | None:
    spec = HUBS.get(hub)
    return spec.links.uploader_url(author) if spec is not None else None


def report_route(hub: str) -> str | None:
    """How a report reaches a hub, for people; None for an unknown hub or one without a route."""
    spec = HUBS.get(hub)
    return spec.report_route or None if spec is not None else None


def report_policy(hub: str) -> str | None:
    """The hub's policy clause a report cites, for people; None for an unknown hub or one without."""
    spec = HUBS.get(hub)
    return spec.report_policy or None if spec is not None else None
