"""Hugging Face through the official `huggingface_hub` client.

- `hub.py`: `HuggingFaceHub`, the port over `HfApi` (listing, hashes, range reads, status);
- `listing.py`: the defensive parser of listing items and metadata;
- `transport.py`: the paced HTTP client (quota pools "api"/"resolvers", deadlines);
- `retry.py`: which failures are retried;
- `links.py`: web URLs.

Importing this package is cheap: the client is imported only when a hub is opened."""

from __future__ import annotations

from mirrorwatch.hubs.base import WEIGHT_EXTENSIONS, Hub, HubSpec
from mirrorwatch.hubs.huggingface.links import HfLinks

NAME = "hf"
# Hugging Face's repo types (huggingface_hub's REPO_TYPES, without "kernel"); the first is the default
REPO_TYPES = ("model", "dataset", "space")


def open_hub(location: str | None = None, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
             known: dict[str, dict] | None = None) -> Hub:
    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub

    return HuggingFaceHub(location, extensions=extensions)


# Report text (checked 2026-11 against Hugging Face's own pages):
# - policy: the "Content Policy" at https://huggingface.co/content-guidelines (incorporated into the
#   Terms of Service); its "Restricted Content" section lists non-consensual sexual content and content
#   revealing private information, and states consent as a core value: people's images or media must
#   not be shared without their explicit consent.
# - route: Hub docs "Moderation" (https://huggingface.co/docs/hub/moderation): the three-dot menu at the
#   top right of a repository, "Report the repository", a reason (ethical issue, legal issue, ...) and a
#   description; the report opens a public discussion on the repository. No abuse mailbox for content
#   reports could be confirmed, so none is named here.
SPEC = HubSpec(name=NAME, label="Hugging Face", kind="remote", links=HfLinks(), open=open_hub,
               help="Sweep Hugging Face model, dataset and Space repos (HF_ENDPOINT, HF_TOKEN from the environment).",
               archives=True, repo_types=REPO_TYPES,
               report_policy="the Hugging Face Content Policy (https://huggingface.co/content-guidelines): "
                             "Restricted Content, and its rule that people's images and media are not "
                             "shared without their explicit consent",
               report_route="on each repository page listed below, open the three-dot menu at the top right, "
                            "choose \"Report the repository\", give the reason \"Ethical issue\" or \"Legal "
                            "issue\" and paste the evidence block for that repository (the report opens a "
                            "public discussion on the repository; see https://huggingface.co/docs/hub/moderation)")
