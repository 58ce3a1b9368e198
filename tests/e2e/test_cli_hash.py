"""`mirrorwatch hash` and `mirrorwatch inspect` end to end, through the installed console script."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from _hash_helpers import TWO_MIB, naive_hashes, random_bytes, safetensors_bytes, write

ROOT = Path(__file__).resolve().parents[2]
MIRRORWATCH = ROOT / ".venv" / "bin" / "mirrorwatch"
KEYS = ["path", "size", "sha256", "autov1", "autov2", "autov3", "autov3_full", "crc32", "blake3"]
HELLO_SHA = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
ATTN2 = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(MIRRORWATCH)] if MIRRORWATCH.exists() else [sys.executable, "-m", "mirrorwatch.cli.main"]
    env = {k: v for k, v in os.environ.items() if k != "MIRRORWATCH_DEBUG"}
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout
    assert "internal error" not in result.stderr, result.stderr
    return result


class Detonator:
    """Unpickling this writes a marker file: proof a pickle was (or was not) opened."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "nested" / "deeper").mkdir(parents=True)
    write(root / "hello.txt", b"hello world")
    write(root / "nested" / "big.bin", random_bytes(TWO_MIB + 3, seed=1))
    save_file(
        {f"{ATTN2}.lora_down.weight": np.ones((4, 768), np.float16)},
        str(root / "nested" / "deeper" / "lora.safetensors"),
        metadata={"ss_output_name": "synthetic"},
    )
    marker = tmp_path / "UNPICKLED"
    write(root / "evil.ckpt", pickle.dumps(Detonator(str(marker))))
    outside = write(tmp_path / "outside.txt", b"outside the tree")
    os.symlink(outside, root / "link_out.txt")
    os.symlink(root / "hello.txt", root / "nested" / "link_in.txt")
    return root


def test_hash_json_folder(tree: Path):
    result = run("hash", "--json", str(tree), cwd=tree.parent)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    paths = [row["path"] for row in rows]
    assert paths == sorted(paths)
    names = {Path(p).name for p in paths}
    assert names == {"hello.txt", "big.bin", "lora.safetensors", "evil.ckpt", "link_in.txt"}
    assert "link_out.txt" in result.stderr and "outside" in result.stderr
    for row in rows:
        assert list(row) == KEYS
        data = Path(row["path"]).read_bytes()
        assert {k: v for k, v in row.items() if k != "path"} == naive_hashes(data)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["hello.txt"]["sha256"] == HELLO_SHA and by_name["hello.txt"]["crc32"] == "85114a0d"
    assert by_name["big.bin"]["autov1"] is not None
    assert by_name["lora.safetensors"]["autov3_full"] is not None
    assert by_name["evil.ckpt"]["autov3"] is None
    assert not (tree.parent / "UNPICKLED").exists()


def test_hash_csv(tree: Path):
    result = run("hash", "--csv", "hello.txt", "nested/big.bin", cwd=tree)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == KEYS
    assert [r[0] for r in rows[1:]] == ["hello.txt", "nested/big.bin"]
    hello = dict(zip(KEYS, rows[1], strict=True))
    assert hello == {
        "path": "hello.txt",
        "size": "11",
        "sha256": HELLO_SHA,
        "autov1": "",
        "autov2": "b94d27b993",
        "autov3": "",
        "autov3_full": "",
        "crc32": "85114a0d",
        "blake3": "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24",
    }


def test_hash_table_shows_every_form_in_full(tree: Path):
    result = run("hash", "hello.txt", "nested/deeper/lora.safetensors", cwd=tree)
    assert result.returncode == 0, result.stderr
    expected = naive_hashes((tree / "nested/deeper/lora.safetensors").read_bytes())
    for value in (HELLO_SHA, "b94d27b993", "85114a0d", expected["autov3_full"], expected["blake3"]):
        assert value in result.stdout
    for label in ("SHA256", "AutoV1", "AutoV2", "AutoV3", "CRC32", "BLAKE3"):
        assert label in result.stdout
    assert result.stderr == ""  # no progress bar when stdout is not a terminal


def test_missing_and_bad_paths_continue_then_fail(tree: Path):
    os.mkfifo(tree / "a_fifo")
    os.symlink(tree / "gone.txt", tree / "dangling")
    result = run("hash", "--json", "no-such-file", "hello.txt", str(tree / "a_fifo"), cwd=tree)
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == ["hello.txt"]
    lines = result.stderr.strip().splitlines()
    assert any("no-such-file" in line and "no such file" in line for line in lines)
    assert any("a_fifo" in line and "not a regular file" in line for line in lines)
    # walking the folder: the fifo is not opened (it would block), the broken link is reported
    result = run("hash", "--json", ".", cwd=tree)
    assert result.returncode == 1
    assert "broken symlink" in result.stderr
    assert "a_fifo: skipped, not a regular file" in result.stderr
    assert {Path(r["path"]).name for r in json.loads(result.stdout)} >= {"hello.txt", "big.bin"}


# Modules the `hash --json|--csv` fast path must not load: each costs start-up that a storage scan,
# running `mirrorwatch hash` once per object, pays millions of times (cli/hash_core.py).
HEAVY = ("typer", "click", "rich", "pydantic", "sqlalchemy", "numpy", "safetensors", "httpx", "huggingface_hub")
LOADED = """
import sys
from mirrorwatch.cli.main import main
sys.argv = ["mirrorwatch", *sys.argv[1:]]
try:
    main()
finally:
    sys.stderr.write("LOADED " + " ".join(sorted({m.split(".")[0] for m in sys.modules})) + "\\n")
"""


def loaded_modules(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run([sys.executable, "-c", LOADED, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120, check=False)
    line = [x for x in result.stderr.splitlines() if x.startswith("LOADED ")][-1]
    return result, set(line.split()[1:])


@pytest.mark.parametrize("fmt", ["--json", "--csv"])
def test_machine_output_to_a_pipe_starts_without_typer_and_says_the_same(tree: Path, fmt: str):
    """`hash --json|--csv` to a pipe runs without Typer and Rich, and gives exactly what the Typer
    command gives: the same rows, messages and exit status (here 1: a missing path and a walk with a
    symlink to outside)."""
    from typer.testing import CliRunner

    import mirrorwatch.cli.hash_cmds  # noqa: F401  (registers the command)
    from mirrorwatch.cli.app import app

    args = ("hash", fmt, "no-such-file", "hello.txt", ".")
    fast, modules = loaded_modules(*args, cwd=tree)
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert "mirrorwatch" in modules and fast.returncode == 1
    cwd = os.getcwd()
    os.chdir(tree)
    try:
        typer_run = CliRunner().invoke(app, list(args), terminal_width=200)
    finally:
        os.chdir(cwd)
    assert typer_run.exit_code == fast.returncode
    typer_out = typer_run.stdout
    if fmt == "--json":
        assert json.loads(fast.stdout) == json.loads(typer_out)
    else:
        assert fast.stdout == typer_out
    assert "no-such-file: no such file or folder" in fast.stderr
    assert "link_out.txt: skipped, a symlink to outside" in fast.stderr


def test_hashing_named_files_loads_no_typing_or_dataclasses(tree: Path):
    """Named files (no folder to walk): not even typing, dataclasses or inspect are imported, about a
    fifth of the fast path's start-up (importtime: 23 ms for hash_core against 31 ms with them)."""
    result, loaded = loaded_modules("hash", "--json", "hello.txt", "nested/big.bin", cwd=tree)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2
    assert not loaded & {"typing", "dataclasses", "inspect", *HEAVY}, loaded & {"typing", "dataclasses", "inspect"}


def test_other_forms_of_hash_go_through_typer(tree: Path):
    """Help, a usage error and the table still come from the Typer command."""
    for args in (("hash", "--help"), ("hash", "--json", "--csv", "hello.txt"), ("hash", "hello.txt"),
                 ("hash", "--json"), ("hash", "--json", "--nope", "hello.txt")):
        result, modules = loaded_modules(*args, cwd=tree)
        assert "typer" in modules, args
        assert "Traceback" not in result.stderr
    result = run("hash", "--help", cwd=tree)
    assert result.returncode == 0 and "--json" in result.stdout


def test_json_and_csv_together_is_one_line_error(tree: Path):
    result = run("hash", "--json", "--csv", "hello.txt", cwd=tree)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "--json" in result.stderr and "--csv" in result.stderr


def test_empty_folder(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    result = run("hash", "--json", "empty", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout) == []


def kohya_file(path: Path) -> Path:
    save_file(
        {
            f"{ATTN2}.lora_down.weight": np.zeros((4, 768), np.float16),
            f"{ATTN2}.lora_up.weight": np.zeros((320, 4), np.float16),
            f"{ATTN2}.alpha": np.array(4.0, np.float16),
        },
        str(path),
        metadata={
            "ss_output_name": "[bold red]zorblat_v2",
            "ss_tag_frequency": json.dumps({"10_zorblat woman": {"zorblat": 12}}),
            "ss_base_model_version": "sd_v1",
            "sshs_model_hash": "C0FFEE" + "0" * 58,
            "modelspec.title": "Zorblat\x1b[31m",
            "modelspec.architecture": "stable-diffusion-v1/lora",
            "format": "pt",
        },
    )
    return path


def test_inspect_json(tmp_path: Path):
    path = kohya_file(tmp_path / "lora.safetensors")
    result = run("inspect", "--json", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["tensor_count"] == 3
    assert info["dtypes"] == {"F16": 3}
    assert info["tensors"][f"{ATTN2}.lora_down.weight"]["shape"] == [4, 768]
    assert info["kohya"]["ss_output_name"] == "[bold red]zorblat_v2"
    assert set(info["kohya"]) == {"ss_output_name", "ss_tag_frequency", "ss_base_model_version"}
    assert info["sshs"] == {"sshs_model_hash": "C0FFEE" + "0" * 58}
    assert info["modelspec"]["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert info["sshs_model_hash"] == "c0ffee" + "0" * 58
    assert info["metadata"]["format"] == "pt"
    assert info["kind"]["family"] == "lora" and info["kind"]["base"] == "SD1"
    assert info["kind"]["reasons"]
    assert info["data_start"] + info["data_size"] == path.stat().st_size


def test_inspect_table_is_plain_text(tmp_path: Path):
    path = kohya_file(tmp_path / "lora.safetensors")
    result = run("inspect", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for section in ("kohya training fields (ss_*)", "kohya hashes (sshs_*)", "ModelSpec (modelspec.*)"):
        assert section in out
    assert "[bold red]zorblat_v2" in out  # shown as text, not applied as markup
    assert "\x1b" not in out and "\\x1b" in out  # control characters escaped
    assert "c0ffee" + "0" * 58 in out
    assert "lora" in out and "SD1" in out
    assert "10_zorblat woman" in out


def test_inspect_many_tensors_lists_a_few(tmp_path: Path):
    tensors = {f"layer.{i}.weight": np.zeros((2, 2), np.float32) for i in range(40)}
    save_file(tensors, str(tmp_path / "m.safetensors"))
    result = run("inspect", "m.safetensors", cwd=tmp_path)
    assert result.returncode == 0
    assert "and 28 more" in result.stdout
    info = json.loads(run("inspect", "--json", "m.safetensors", cwd=tmp_path).stdout)
    assert len(info["tensors"]) == 40


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "only 0 bytes"),
        ((1_000_000_000).to_bytes(8, "little") + b"{}", "1,000,000,000"),
        ((5).to_bytes(8, "little") + b"{oops", "not valid JSON"),
        (safetensors_bytes(raw_header={"__metadata__": {"epochs": 3}}), "not a string"),
        (
            safetensors_bytes(
                raw_header={
                    "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                    "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]},
                }
            )
            + bytes(8),
            "overlap",
        ),
    ],
)
def test_inspect_malformed_exits_2_with_one_line(tmp_path: Path, data: bytes, reason: str):
    write(tmp_path / "bad.safetensors", data)
    result = run("inspect", "bad.safetensors", cwd=tmp_path)
    assert result.returncode == 2
    assert reason in result.stderr
    assert "bad.safetensors" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_inspect_refuses_pickles_without_opening(tmp_path: Path):
    marker = tmp_path / "UNPICKLED"
    write(tmp_path / "evil.ckpt", pickle.dumps(Detonator(str(marker))))
    result = run("inspect", "evil.ckpt", cwd=tmp_path)
    assert result.returncode != 0
    assert "pickle" in result.stderr and "never opens" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # a pickle renamed to .safetensors is still not opened, and is recognised
    write(tmp_path / "renamed.safetensors", pickle.dumps(Detonator(str(marker))))
    result = run("inspect", "renamed.safetensors", cwd=tmp_path)
    assert result.returncode == 2
    assert "pickle" in result.stderr
    assert not marker.exists()


def test_inspect_missing_file_and_folder(tmp_path: Path):
    result = run("inspect", "nope.safetensors", cwd=tmp_path)
    assert result.returncode == 3
    assert "no such file" in result.stderr
    result = run("inspect", ".", cwd=tmp_path)
    assert result.returncode != 0
    assert "folder" in result.stderr


def test_inspect_does_not_open_a_fifo(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.safetensors")
    result = run("inspect", "pipe.safetensors", cwd=tmp_path)  # would block forever if opened
    assert result.returncode == 1
    assert "not a regular file" in result.stderr


def test_hostile_file_names_are_escaped(tmp_path: Path):
    name = "evil\x1b[31mred\nline[bold].bin"
    write(tmp_path / name, b"hello world")
    result = run("hash", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\\x1b[31mred\\nline[bold].bin" in result.stdout.replace("\n", "").replace(" ", "")
    rows = json.loads(run("hash", "--json", ".", cwd=tmp_path).stdout)
    assert rows[0]["path"] == f"./{name}"
    assert rows[0]["sha256"] == HELLO_SHA
