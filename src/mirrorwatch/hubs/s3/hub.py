"""An S3-compatible bucket (and key prefix) as one repo of a hub.

Listing is `ListObjectsV2` under the prefix; an object's identity for "unchanged" is its ETag, size
and modification time. An object whose ETag, size and mtime equal what an earlier sweep stored keeps
its stored hashes and is not read again; any other object is handed to the sweep's content stage
unhashed (`hashes_by_reading`), which reads it once — to private temporary storage, size-capped and
deleted after use, or streamed when it is larger than the cap — for every hash form, its header and
its fingerprint. Every read is pinned to the listed ETag (`If-Match`): an object replaced or deleted
between the listing and the read (or between two parts of a streamed read) fails that read with a
short reason (recorded; the sweep goes on), never hashes a mix of two versions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from mirrorwatch.errors import InvalidInput, MalformedFile, MirrorwatchError
from mirrorwatch.hubs.base import (
    LIVE,
    REMOVED,
    WEIGHT_EXTENSIONS,
    Hub,
    ListingPage,
    RemoteFile,
    RepoFiles,
    RepoListing,
    RepoStatus,
    Scope,
    SkipRepo,
    is_weight_file,
)
from mirrorwatch.hubs.s3 import NAME

if TYPE_CHECKING:
    from mirrorwatch.formats.safetensors import SafetensorsHeader

# What a stored file keeps to know an object unchanged (besides its sha256): HubFile.hashes keys.
STAMP_KEYS = ("etag", "size", "mtime")


class ObjectChanged(MirrorwatchError):
    """An object replaced, or deleted, between the listing and a read of it."""


def parse_location(location: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``; the prefix is a folder ("" or ending in "/")."""
    if not location.startswith("s3://"):
        raise InvalidInput(f"not an S3 location: {location!r} (use s3://bucket/prefix)")
    bucket, _, prefix = location[5:].partition("/")
    if not bucket or "/" in bucket:
        raise InvalidInput(f"not an S3 location: {location!r} (use s3://bucket/prefix)")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


def _stamp(obj: dict[str, Any]) -> dict[str, Any]:
    when = obj["LastModified"]
    mtime = int(when.timestamp() * 1e9) if isinstance(when, datetime) else str(when)
    return {"etag": str(obj["ETag"]).strip('"'), "size": int(obj["Size"]), "mtime": mtime}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# An object streamed past the content-tier cap is read in parts of this size, each its own ranged GET
# pinned to the listed ETag: a part cut off mid-read is asked again from where it stopped, and an
# object replaced between two parts fails the read instead of hashing a mix of two versions.
STREAM_PART = 64 * 1024**2
PART_TRIES = 3


class _PartReader:
    """An object's bytes (one version) as a stream with `readinto` (what the hashing engine reads
    from): ranged GETs of `part` bytes, each with If-Match on the ETag; the size is the first
    answer's Content-Range total, and the stream must end exactly there."""

    def __init__(self, hub: S3Hub, path: str, etag: str | None, part: int) -> None:
        self.hub, self.path, self.etag, self.part = hub, path, etag, max(1, part)
        self.offset = 0
        self.size: int | None = None
        self.body: Any = None
        self.part_end = -1  # last byte of the part being read

    def _open(self) -> None:
        if self.offset <= self.part_end:  # the rest of a part that was cut off
            end = self.part_end
        else:
            end = self.offset + self.part - 1 if self.size is None else min(self.offset + self.part, self.size) - 1
        answer = self.hub._get(self.path, self.etag, f"bytes={self.offset}-{end}")
        total = str(answer.get("ContentRange") or "").rpartition("/")[2]
        if self.size is None:
            self.size = int(total) if total.isdigit() else int(answer.get("ContentLength") or 0)
            self.etag = self.etag or str(answer.get("ETag") or "").strip('"') or None  # (the rest: this version)
        elif total.isdigit() and int(total) != self.size:
            raise ObjectChanged("object changed while it was read (its size differs): read again next scan")
        self.body = answer["Body"]
        self.part_end = min(end, self.size - 1)

    def close(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def readinto(self, view: memoryview) -> int:
        if self.size is not None and self.offset >= self.size:
            return 0
        for attempt in range(1, PART_TRIES + 1):
            try:
                if self.body is None:
                    self._open()
                    if self.offset >= (self.size or 0):
                        return 0
                data = self.body.read(min(len(view), self.part_end + 1 - self.offset))
                if not data:
                    raise ObjectChanged(f"object ended at byte {self.offset:,} of {self.size:,}: read again next scan")
                break
            except (BotoCoreError, OSError) as exc:  # cut off mid-part: ask again from where it stopped
                self.close()
                if attempt == PART_TRIES:
                    raise self.hub._fail(exc, f"reading {self.path}") from None
        view[: len(data)] = data
        self.offset += len(data)
        if self.offset > self.part_end:
            self.close()
        return len(data)


class S3Hub(Hub):
    """One bucket prefix as one repo. Reads only what it lists; never writes to the store."""

    name: ClassVar[str] = NAME
    label: ClassVar[str] = "object storage (S3)"
    repo_types: ClassVar[tuple[str, ...]] = ("folder",)

    def __init__(self, location: str, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
                 known: dict[str, dict] | None = None, endpoint: str | None = None) -> None:
        self.bucket, self.prefix = parse_location(location)
        self.location = f"s3://{self.bucket}/{self.prefix}"
        self.endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
        self.extensions = extensions
        self.known = known or {}  # path -> stored hashes (with etag, size, mtime) from earlier sweeps
        self.objects: dict[str, dict[str, Any]] = {}  # path -> stamp, from the listing
        self.hashes_by_reading = True
        self.stream_part = STREAM_PART
        config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)
        try:
            self.client = boto3.session.Session().client("s3", endpoint_url=self.endpoint, config=config)
        except (BotoCoreError, ValueError) as exc:
            raise InvalidInput(f"cannot use the S3 endpoint: {exc}") from None

    def check(self) -> None:
        """That the bucket is there and readable with these credentials (a clear InvalidInput if not)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise InvalidInput(f"no such bucket: {self.bucket}") from None
            if _code(exc) in ("403", "AccessDenied"):
                raise InvalidInput(f"S3 refused access to the bucket {self.bucket} (check the credentials)") from None
            raise self._fail(exc, f"checking the bucket {self.bucket}") from None
        except BotoCoreError as exc:
            raise self._fail(exc, f"reaching the store for {self.bucket}") from None

    # -- listing ---------------------------------------------------------------------------------
    def _key(self, path: str) -> str:
        return self.prefix + path

    def _fail(self, exc: Exception, what: str) -> MirrorwatchError:
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return InvalidInput("no S3 credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile")
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code == "NoSuchBucket":
                return InvalidInput(f"no such bucket: {self.bucket}")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return InvalidInput(f"S3 refused {what}: {code}")
            return MirrorwatchError(f"S3 {what} failed: {code or exc}")
        return MirrorwatchError(f"S3 {what} failed: {type(exc).__name__}: {str(exc)[:200]}")

    def list_pages(self, scope: Scope) -> Iterator[ListingPage]:
        paths: list[str] = []
        newest: datetime | None = None
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    path = obj["Key"][len(self.prefix):]
                    if not path or path.endswith("/") or not is_weight_file(path, self.extensions):
                        continue
                    self.objects[path] = _stamp(obj)
                    paths.append(path)
                    when = obj.get("LastModified")
                    if isinstance(when, datetime) and (newest is None or when > newest):
                        newest = when
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, f"listing s3://{self.bucket}/{self.prefix}") from None
        stamp = newest.astimezone(UTC).replace(tzinfo=None) if newest else None
        yield [RepoListing(repo_id=self.location, author=None, sha=None, last_modified=stamp, paths=paths)]

    def repo_listing(self, repo_id: str, repo_type: str | None = None) -> RepoListing:
        return next(iter(self.list_pages({})))[0]

    def _head(self, path: str) -> dict[str, Any]:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(path))
        except ClientError as exc:
            raise ObjectChanged(f"object vanished: {_code(exc) or exc}") from None
        return _stamp({"ETag": head["ETag"], "Size": head["ContentLength"], "LastModified": head["LastModified"]})

    # -- hashes ----------------------------------------------------------------------------------
    def fetch_files(self, repo: RepoListing, paths: list[str] | None) -> RepoFiles:
        """Stored hashes for unchanged objects; the others unhashed (with their stamp), for the
        sweep's content stage to read once. No object is read here."""
        files: list[RemoteFile] = []
        problems: list[tuple[str, str]] = []
        for path in paths if paths is not None else repo.paths or []:
            try:
                stamp = self.objects.get(path) or self._head(path)
            except ObjectChanged as exc:
                problems.append((path, f"skipped, {exc}"))
                continue
            prev = self.known.get(path) or {}
            if all(prev.get(k) == stamp[k] for k in STAMP_KEYS) and prev.get("sha256"):
                hashes = {k: v for k, v in prev.items() if k != "sha256"}
                files.append(RemoteFile(path=path, size=stamp["size"], sha256=prev["sha256"], lfs=False,
                                        revision=stamp["etag"], hashes=hashes))
            else:
                files.append(RemoteFile(path=path, size=stamp["size"], sha256=None, lfs=False,
                                        revision=stamp["etag"], hashes=dict(stamp)))
        return RepoFiles(repo=repo, files=files, method="local", requests=0, problems=problems)

    # -- bounded reads (pinned to the listed ETag) ------------------------------------------------
    def _get(self, path: str, etag: str | None, byte_range: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(path)}
        if etag:
            kwargs["IfMatch"] = f'"{etag.strip(chr(34))}"'  # (an entity tag is quoted, RFC 9110)
        if byte_range:
            kwargs["Range"] = byte_range
        try:
            return self.client.get_object(**kwargs)
        except ClientError as exc:
            code = _code(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectChanged("object vanished before it was read") from None
            if code in ("PreconditionFailed", "412"):
                raise ObjectChanged("object changed since it was listed (ETag differs): read again next scan") from None
            raise self._fail(exc, f"reading {path}") from None
        except BotoCoreError as exc:
            raise self._fail(exc, f"reading {path}") from None

    def _read(self, path: str, etag: str | None, start: int, end: int) -> bytes:
        body = self._get(path, etag, f"bytes={start}-{end}")["Body"]
        try:
            return body.read(end - start + 1)
        finally:
            body.close()

    def read_header(self, repo_id: str, path: str, revision: str | None,
                    size: int | None, *, repo_type: str | None = None, first_read: int = 4096,
                    max_header_bytes: int = 8_000_000) -> tuple[SafetensorsHeader, int]:
        from mirrorwatch.formats.safetensors import header_length, parse_header

        head = self._read(path, revision, 0, first_read - 1)
        n = header_length(head[:8], max_header_bytes=max_header_bytes, file_size=size)
        fetched = len(head)
        raw = head[8 : 8 + n]
        if len(raw) < n:
            rest = self._read(path, revision, 8 + len(raw), 8 + n - 1)
            fetched += len(rest)
            raw += rest
        return parse_header(raw, header_len=n, file_size=size), fetched

    def fetch_to(self, repo_id: str, path: str, revision: str | None, dest: Path, *, max_bytes: int,
                 repo_type: str | None = None) -> Path:
        """Stream the object (the listed version) to `dest`; refuse past max_bytes."""
        answer = self._get(path, revision)
        body = answer["Body"]
        try:
            if int(answer.get("ContentLength") or 0) > max_bytes:
                raise MalformedFile(f"{path} is larger than the {max_bytes:,}-byte content-tier cap")
            written = 0
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                for chunk in body.iter_chunks(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        raise MalformedFile(f"{path} is larger than the {max_bytes:,}-byte content-tier cap")
                    out.write(chunk)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"reading {path}") from None
        finally:
            body.close()
        return dest

    @contextmanager
    def open_stream(self, repo_id: str, path: str, revision: str | None) -> Iterator[Any]:
        """The object's bytes (the listed version) as a stream, for hashing objects larger than the
        content-tier cap in every form without a copy: ETag-pinned ranged GETs of `stream_part` bytes."""
        reader = _PartReader(self, path, revision, self.stream_part)
        try:
            yield reader
        finally:
            reader.close()

    # -- status ----------------------------------------------------------------------------------
    def repo_status(self, repo_id: str, *, repo_type: str | None = None) -> RepoStatus:
        try:
            listing = self.repo_listing(repo_id)
        except InvalidInput as exc:
            return RepoStatus(REMOVED, str(exc))
        except MirrorwatchError as exc:
            raise SkipRepo(str(exc)) from None
        return RepoStatus(LIVE, "", files=[RemoteFile(path=p, size=self.objects[p]["size"], lfs=False,
                                                      revision=self.objects[p]["etag"]) for p in listing.paths or []])
