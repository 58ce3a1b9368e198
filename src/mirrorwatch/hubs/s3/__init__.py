"""An S3-compatible object store as a hub (`hub.py`): a bucket and a prefix swept like a folder.

`mirrorwatch scan s3://bucket/prefix` (or `scan s3 s3://bucket/prefix`). Credentials come from the
environment or the standard AWS configuration (boto3's own chain); the endpoint of a store other
than AWS from `--endpoint` or AWS_ENDPOINT_URL. Importing this package is cheap: boto3 (the optional
extra `mirrorwatch[s3]`) is imported when the hub is opened."""

from __future__ import annotations

from mirrorwatch.hubs.base import WEIGHT_EXTENSIONS, Hub, HubLinks, HubSpec

NAME = "s3"


def open_hub(location: str | None = None, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
             known: dict[str, dict] | None = None, endpoint: str | None = None) -> Hub:
    from mirrorwatch.errors import InvalidInput

    if not location:
        raise InvalidInput("an object-store hub needs a location: s3://bucket/prefix")
    try:
        from mirrorwatch.hubs.s3.hub import S3Hub
    except ImportError as exc:  # boto3 missing
        raise InvalidInput(f"scanning S3 needs boto3: pip install 'mirrorwatch[s3]' ({exc})") from None
    return S3Hub(location, extensions=extensions, known=known, endpoint=endpoint)


# A bucket prefix is one "repo" of this hub, of the same kind as a local folder root.
REPO_TYPE = "folder"

SPEC = HubSpec(name=NAME, label="object storage (S3)", kind="folder", links=HubLinks(), open=open_hub,
               help="Sweep an S3-compatible bucket (s3://bucket/prefix): hash every object in every form, read "
                    "headers, fingerprint LoRAs, match against the banks; unchanged objects are not read again.",
               scheme="s3", repo_types=(REPO_TYPE,))
# Like a local folder: the bucket is the platform's own storage, so a report on it goes to internal review.
