"""`scan s3://bucket/prefix` dispatches to the hub of that URL scheme; `--ray` may come without an
address (a local Ray instance) and takes the next word only when it is one."""

from __future__ import annotations

from typer.testing import CliRunner

import mirrorwatch.cli.scan_cmds  # noqa: F401  (registers the scan commands)
from mirrorwatch.cli.app import app
from mirrorwatch.cli.scan_cmds import _ADDRESS, _ScanGroup


def test_a_url_of_a_registered_scheme_opens_its_hub():
    out = CliRunner().invoke(app, ["scan", "s3://some-bucket/uploads", "--help"], terminal_width=200)
    assert out.exit_code == 0 and "Usage: mirrorwatch scan s3 [OPTIONS]" in out.output
    out = CliRunner().invoke(app, ["scan", "gopher://x/y"], terminal_width=200)
    assert out.exit_code != 0 and "No such command" in out.output


def test_ray_without_an_address_means_a_local_instance():
    for word in ("auto", "local", "ray://head.internal:10001", "10.0.0.5:6379", "head-1.internal:6379", "[::1]:6379"):
        assert _ADDRESS.match(word), word
    for word in ("/srv/uploads", "uploads", "--deep", "s3://bucket/x", "C:/models"):
        assert not _ADDRESS.match(word), word

    seen = {}

    class Probe(_ScanGroup):
        def __init__(self) -> None:  # (only parse_args is exercised)
            pass

    def fake_parse(self, ctx, args):
        seen["args"] = args
        return args

    import typer.core

    original = typer.core.TyperGroup.parse_args
    typer.core.TyperGroup.parse_args = fake_parse
    try:
        Probe().parse_args(None, ["dir", "--ray", "/srv/uploads"])
        assert seen["args"] == ["dir", "--ray=local", "/srv/uploads"]
        Probe().parse_args(None, ["dir", "/srv/uploads", "--ray", "10.0.0.5:6379"])
        assert seen["args"] == ["dir", "/srv/uploads", "--ray", "10.0.0.5:6379"]
        Probe().parse_args(None, ["s3://b/p", "--ray"])
        assert seen["args"] == ["s3", "s3://b/p", "--ray=local"]
    finally:
        typer.core.TyperGroup.parse_args = original
