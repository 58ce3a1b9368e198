"""The hub registry: one list of hubs that the CLI, reports, links and the dashboard read."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirrorwatch.errors import InvalidInput
from mirrorwatch.hubs.base import Hub, HubSpec
from mirrorwatch.hubs.registry import HUBS, default_hub, hub_label, hub_spec, web_url
from mirrorwatch.services import reports, review
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.models import Entry
from webdata import add_mirror


def test_every_registered_hub_has_a_scan_command():
    import mirrorwatch.cli.scan_cmds  # noqa: F401  (registers the scan commands)
    from mirrorwatch.cli.app import app

    out = CliRunner().invoke(app, ["scan", "--help"], terminal_width=200)
    assert out.exit_code == 0
    for name in HUBS:
        assert f" {name} " in out.output


def test_specs_build_their_hubs(tmp_path):
    for spec in HUBS.values():
        assert isinstance(spec, HubSpec) and spec.label
    hub = hub_spec("dir").open(str(tmp_path))
    assert isinstance(hub, Hub) and hub.name == "dir"
    with pytest.raises(InvalidInput, match="unknown hub 'nope'"):
        hub_spec("nope")


def test_hub_port_is_abstract():
    class Half(Hub):
        name = "half"
        label = "half a hub"

    with pytest.raises(TypeError):
        Half()  # type: ignore[abstract]


def test_web_urls_are_percent_encoded(monkeypatch):
    monkeypatch.setenv("MIRRORWATCH_HF_URL", "http://hub.test/")
    assert web_url(default_hub().name, "some-user/a model") == "http://hub.test/some-user/a%20model"
    assert (web_url("hf", "some-user/m", "sub dir/x#1.safetensors")
            == "http://hub.test/some-user/m/blob/main/sub%20dir/x%231.safetensors")
    assert web_url("dir", str(Path("/srv/models"))) is None
    assert web_url("not-a-hub", "x/y") is None


def test_report_names_the_local_folder_hub_by_its_registered_name(db):
    """The local folder hub records its repos under "dir": a report on them must say what it is
    (reports used to know it as "local", so a "dir" report was titled "... on dir")."""
    assert hub_label("dir") == "local folder"
    assert reports.hub_name("dir") == "local folder"
    assert reports.hub_name("hf") == "Hugging Face"
    bank = create_bank(db, "bank", user="setup")
    with db.session() as s:
        e = Entry(bank_id=bank.id, key="k1", name="Invented Person", name_norm="invented person")
        s.add(e)
        s.flush()
        eid = e.id
    mid, _ = add_mirror(db, eid, hub="dir", repo_id="/srv/models", author=None, path="a.safetensors",
                        sha256="ab" * 32)
    review.decide(db, [mid], "confirmed", None, "rex")
    [made] = reports.build_reports(db, [mid], "rex")
    assert made.hub == "dir" and made.hub_name == "local folder"
    assert made.title.endswith("on local folder")
