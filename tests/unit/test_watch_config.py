"""The watch config: durations, the jobs a config makes, repo types, the job registry, refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mirrorwatch.errors import InvalidInput
from mirrorwatch.watch import jobs as watch_jobs
from mirrorwatch.watch.config import format_duration, parse_config, parse_duration
from mirrorwatch.watch.jobs import JobKind

CFG = Path("watch.toml")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("6h", 21600), ("1d", 86400),
                                               ("2w", 1209600), ("1h30m", 5400), (" 1.5h ", 5400), ("90M", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "15x", "-5m", "m", "1h-30m", "0s", "0.5s", "367d", "1e3s"])
def test_impossible_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration():
    assert [format_duration(timedelta(seconds=s)) for s in (45, 900, 5400, 90061)] == ["45s", "15m", "1h30m", "1d1h1m1s"]


def test_a_config_makes_one_job_per_schedule(tmp_path):
    cfg = parse_config(f"""
        [hubs.hf]
        sweep_every = "15m"
        recheck_every = "6h"
        content = true
        author = "some-org"
        filter = ["lora"]
        ext = ["safetensors", ".CKPT"]
        min_size = "1MB"
        concurrency = 4
        since = "7d"

        [hubs.dir]
        path = "{tmp_path}"
        sweep_every = "1h"
        """, CFG)
    by_name = {j.name: j for j in cfg.jobs}
    assert list(by_name) == ["sweep hf", "recheck hf", "sweep dir"]
    sweep = by_name["sweep hf"]
    assert (sweep.kind, sweep.hub, sweep.every) == ("sweep", "hf", timedelta(minutes=15))
    assert sweep.settings["extensions"] == [".safetensors", ".ckpt"] and sweep.settings["min_size"] == 1_000_000
    assert sweep.settings["content"] is True and sweep.settings["author"] == "some-org"
    assert by_name["recheck hf"].every == timedelta(hours=6)
    assert by_name["sweep dir"].settings["path"] == str(tmp_path.resolve())
    assert cfg.notes == []


def test_repo_types_make_one_sweep_job_per_type():
    """Hugging Face lists model, dataset and Space repos (issue 10): `repo_types` gives one sweep job per
    type, each incremental on its own; without it one job sweeps every type."""
    cfg = parse_config('[hubs.hf]\nsweep_every = "1h"\nrecheck_every = "1d"\nrepo_types = ["model", "dataset"]\n',
                       CFG)
    assert [(j.name, j.settings.get("repo_type")) for j in cfg.jobs] == [
        ("sweep hf model", "model"), ("sweep hf dataset", "dataset"), ("recheck hf", None)]
    assert cfg.notes == []
    cfg = parse_config('[hubs.hf]\nsweep_every = "1h"\n', CFG)
    assert [j.name for j in cfg.jobs] == ["sweep hf"] and "repo_type" not in cfg.jobs[0].settings


def test_other_job_kinds_come_from_the_registry(monkeypatch):
    with pytest.raises(InvalidInput, match=r"\[jobs.mirror\]: unknown job kind 'mirror'"):
        parse_config('[jobs.mirror]\nevery = "1m"\n', CFG)
    assert "notify" in watch_jobs.JOB_KINDS  # notification delivery (services/notify.py) is a registered kind
    monkeypatch.setitem(watch_jobs.JOB_KINDS, "notify", JobKind(lambda ctx, job: "sent 0", keys=frozenset({"batch"})))
    cfg = parse_config('[jobs.notify]\nevery = "1m"\nbatch = 50\n', CFG)
    assert [(j.name, j.kind, j.every, j.settings) for j in cfg.jobs] == [
        ("notify", "notify", timedelta(minutes=1), {"batch": 50})]
    with pytest.raises(InvalidInput, match=r"\[jobs.notify\]: unknown key 'size' \(known: batch, every\)"):
        parse_config('[jobs.notify]\nevery = "1m"\nsize = 50\n', CFG)
    with pytest.raises(InvalidInput, match=r"\[jobs.notify\]: every: how often to run it is missing"):
        parse_config('[jobs.notify]\nbatch = 5\n', CFG)
    with pytest.raises(InvalidInput, match=r"\[jobs.sweep\]: sweeps are set per hub"):
        parse_config('[jobs.sweep]\nevery = "1m"\n', CFG)


@pytest.mark.parametrize(("text", "message"), [
    ('[hubs.hf]\nsweep_every = "1h"\nconcurrency = 0\n', "concurrency must be from 1 to 64, not 0"),
    ('[hubs.hf]\nsweep_every = "1h"\nconcurrency = true\n', "concurrency must be a whole number, not bool True"),
    ('[hubs.hf]\nsweep_every = "1h"\nfilter = "lora"\n', "filter must be a list of strings"),
    ('[hubs.hf]\nsweep_every = "1h"\nsince = "last week"\n', "not a date: 'last week'"),
    ('[hubs.hf]\nsweep_every = "1h"\nrepo_types = []\n', "repo_types must list distinct types"),
    ('[hubs.hf]\nsweep_every = "1h"\nrepo_types = ["model", "model"]\n', "repo_types must list distinct types"),
    ('[hubs.dir]\nsweep_every = "1h"\n', "[hubs.dir]: path: the folder to sweep is missing"),
    ('[hubs.dir]\nsweep_every = "1h"\nauthor = "x"\npath = "."\n', "[hubs.dir]: unknown key 'author'"),
    ("hubs = 3\n", "hubs: must be a table"),
    ('[hubs]\nhf = "15m"\n', "[hubs.hf]: must be a table of settings"),
])
def test_refusals_name_the_file_section_and_key(text, message):
    with pytest.raises(InvalidInput) as exc:
        parse_config(text, CFG)
    assert str(exc.value).startswith("watch config watch.toml: ") and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_readme_example_is_a_valid_config(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Watching hubs continuously"):]
    example = section[section.index("```toml\n") + 8:section.index("```\n", section.index("```toml\n") + 8)]
    cfg = parse_config(example.replace("/srv/uploads", str(tmp_path)), CFG)
    assert [(j.name, format_duration(j.every)) for j in cfg.jobs] == [
        ("sweep hf", "15m"), ("recheck hf", "6h"), ("sweep civitai", "1h"), ("recheck civitai", "1d"),
        ("sweep dir", "30m")]
