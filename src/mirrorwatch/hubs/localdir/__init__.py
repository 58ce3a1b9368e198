"""A local folder as a hub, for platforms scanning their own storage (`hub.py`).

Importing this package is cheap: the hub (and the hashing engine) are imported when it is opened."""

from __future__ import annotations

from pathlib import Path

from mirrorwatch.hubs.base import WEIGHT_EXTENSIONS, Hub, HubLinks, HubSpec

NAME = "dir"
REPO_TYPE = "folder"  # the one kind of repo of this hub: a folder root


def open_hub(location: str | None = None, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
             known: dict[str, dict] | None = None) -> Hub:
    from mirrorwatch.errors import InvalidInput
    from mirrorwatch.hubs.localdir.hub import LocalDirHub

    if not location:
        raise InvalidInput("a local folder hub needs a folder")
    return LocalDirHub(Path(location), extensions=extensions, known=known)


SPEC = HubSpec(name=NAME, label="local folder", kind="folder", links=HubLinks(), open=open_hub,
               repo_types=(REPO_TYPE,),
               help="Sweep a local folder: hash every model file (all forms), read headers, fingerprint "
                    "LoRAs, and match against the banks.")
# No report_route/report_policy: files in a local folder are the platform's own storage, so a report on
# them goes to internal review, not to an outside hub.
