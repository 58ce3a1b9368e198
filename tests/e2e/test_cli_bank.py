"""The bank and lookup commands end to end: exit codes, JSON output, one-line errors, no tracebacks."""

from __future__ import annotations

import json

from conftest import sample


def no_traceback(proc):
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bank_flow(cli):
    assert cli("bank", "create", "research").returncode == 0
    dup = cli("bank", "create", "research")
    assert dup.returncode != 0 and "already exists" in dup.stderr
    no_traceback(dup)

    bad = cli("bank", "import", str(sample("removed-models-sample.csv")), "--bank", "research")
    assert bad.returncode != 0
    assert "row 8" in bad.stderr and "row 12" in bad.stderr and "nothing was imported" in bad.stderr
    no_traceback(bad)

    ok = cli("bank", "import", str(sample("removed-models-sample.csv")), "--bank", "research", "--skip-bad", "--json")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert (summary["added"], summary["duplicates"], summary["rejected"]) == (8, 1, 2)
    assert {r["row"] for r in summary["rejected_rows"]} == {8, 12}

    listed = json.loads(cli("bank", "list", "--json").stdout)
    assert listed[0]["entries"] == 8

    found = cli("lookup", "0899CD856F", "--json")
    assert found.returncode == 0
    data = json.loads(found.stdout)
    assert data["results"][0]["civitai_version_id"] == 202001
    assert data["results"][0]["mirrors"] == []

    human = cli("lookup", "jane exmaple")
    assert human.returncode == 0 and "Jane Example - LoRA v2" in human.stdout

    miss = cli("lookup", "ff" * 32)
    assert miss.returncode == 1 and "no entry found" in miss.stdout


def test_bad_inputs_are_one_line_errors(cli, tmp_path):
    cli("bank", "create", "b")
    garbage = tmp_path / "g.csv"
    garbage.write_bytes(b"\x00\xff" * 1000)
    cases = [
        ("lookup", "https://example.org/page"),
        ("lookup", ""),
        ("bank", "import", str(garbage), "--bank", "b"),
        ("bank", "import", str(tmp_path / "missing.csv"), "--bank", "b"),
        ("bank", "import", str(sample("removed-models-sample.csv")), "--bank", "nobank"),
        ("bank", "import", str(sample("removed-models-sample.csv")), "--bank", "b", "--map", "oops"),
    ]
    for args in cases:
        proc = cli(*args)
        assert proc.returncode not in (0, 70), (args, proc.returncode, proc.stderr)
        assert proc.stderr.strip().startswith("error:"), (args, proc.stderr)
        no_traceback(proc)


def test_db_option_and_env(tmp_path):
    from conftest import run_cli

    target = tmp_path / "elsewhere" / "x.db"
    assert run_cli("--db", str(target), "bank", "create", "z").returncode == 0
    assert target.exists()
    assert json.loads(run_cli("bank", "list", "--json", db=target).stdout)[0]["name"] == "z"
