"""A real S3-compatible server for the object-storage tests: moto's server mode (`moto[server]`)
on 127.0.0.1, spoken to through the real boto3 client, once per session; each test gets its own bucket.

The credentials are moto's placeholders, set in the environment (boto3's standard chain reads them,
and CLI subprocesses inherit them), with AWS_ENDPOINT_URL pointing at the server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

_buckets = itertools.count(1)


ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # (the kernel picks a free port)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class Bucket:
    name: str
    endpoint: str
    client: Any
    env: dict[str, str]

    def put(self, key: str, data: bytes) -> str:
        """Upload an object; returns its ETag (without quotes)."""
        return self.client.put_object(Bucket=self.name, Key=key, Body=data)["ETag"].strip('"')

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)

    def url(self, prefix: str = "") -> str:
        return f"s3://{self.name}/{prefix}"


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch) -> Bucket:
    """An empty bucket on the session's server; the environment names the server and the credentials."""
    import boto3

    env = {**ENV, "AWS_ENDPOINT_URL": s3_endpoint}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"mw-test-{next(_buckets)}"
    client.create_bucket(Bucket=name)
    return Bucket(name, s3_endpoint, client, env)
