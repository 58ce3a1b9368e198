"""Civitai through its public REST API (developer.civitai.com, "Site API").

- `hub.py`: `CivitaiHub`, the port: the models listing (`GET /api/v1/models`, cursor pages,
  `nsfw=true`, sort Newest) carries every file of every version with its hashes, so a sweep costs
  one request per page of up to 100 models and none per file;
- `listing.py`: the defensive parser of listing pages and items;
- `client.py`: the paced HTTP client (backoff on 429/5xx, size caps, the key to this origin only);
- `links.py`: web URLs (model pages, versions, uploaders).

Importing this package is cheap: the client is imported only when a hub is opened."""

from __future__ import annotations

from mirrorwatch.hubs.base import WEIGHT_EXTENSIONS, Hub, HubSpec
from mirrorwatch.hubs.civitai.links import CivitaiLinks

NAME = "civitai"  # stored in HubRepo.hub and ScanRun.source: never change it once used


def open_hub(location: str | None = None, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
             known: dict[str, dict] | None = None) -> Hub:
    from mirrorwatch.hubs.civitai.hub import CivitaiHub

    return CivitaiHub(location, extensions=extensions)


SPEC = HubSpec(
    name=NAME, label="Civitai", kind="remote", links=CivitaiLinks(), open=open_hub,
    help="Sweep Civitai models, every file of every version, by the hashes in its listing "
         "(CIVITAI_ENDPOINT, CIVITAI_API_KEY from the environment).",
    report_route="Use the Report action on each model page listed below (Civitai reviews reports against "
                 "its Terms of Service, including the clause on content depicting real people without "
                 "their consent).",
    report_policy="the Civitai Terms of Service, on content depicting real people without their consent",
)
