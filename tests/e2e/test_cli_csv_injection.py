"""`mirrorwatch matches --csv` and `hash --csv` guard hub-controlled cells against spreadsheet formulas
with the same guard as the web exports (issue 13, defect 7)."""

from __future__ import annotations

import csv
import io

from mirrorwatch.services.exports import csv_safe
from webdata import add_mirror

pytest_plugins = ("webfixtures",)


def test_matches_csv_cannot_run_formulas(world, cli, tmp_path):
    add_mirror(world.db, world.entries[25], repo_id='evil/=HYPERLINK("http://x.invalid","y")',
               author="=cmd|'/c calc'!A1", path="@SUM(1+1).safetensors", sha256="ab" * 32, state="confirmed")
    out = cli("matches", "--csv", "--state", "confirmed", db=tmp_path / "web.db")  # the world's file
    assert out.returncode == 0, out.stderr
    rows = [r for r in csv.DictReader(io.StringIO(out.stdout)) if "HYPERLINK" in r["repo_id"]]
    assert rows, out.stdout[:500]
    row = rows[0]
    assert row["repo_id"] == csv_safe('evil/=HYPERLINK("http://x.invalid","y")')  # not at the start: unchanged
    assert row["uploader"].startswith("'=") and row["path"].startswith("'@")
    for cell in row.values():
        assert cell[:1] not in ("=", "+", "-", "@")


def test_hash_csv_guards_file_names(tmp_path, cli):
    (tmp_path / "=HYPERLINK(1).bin").write_bytes(b"x")
    out = cli("hash", "--csv", str(tmp_path / "=HYPERLINK(1).bin"))
    assert out.returncode == 0, out.stderr
    (row,) = csv.DictReader(io.StringIO(out.stdout))
    assert not row["path"].startswith("=")
