"""JSON-valued safetensors metadata from hostile files (issue 13, defect 9): deeply nested or
absurd-number `ss_network_args` / `ss_tag_frequency` neither crash `inspect` nor cost a sweep the
file's other header evidence."""

from __future__ import annotations

import json

import pytest

from _hash_helpers import safetensors_bytes, write
from mirrorwatch.formats.kinds import guess_kind
from mirrorwatch.formats.safetensors import SafetensorsError, metadata_json, parse_header, read_header
from mirrorwatch.match.header import header_signals

SSHS = "ab" * 32
HOSTILE = {
    "deep arrays": "[" * 100_000 + "]" * 100_000,
    "deep objects": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "900 levels": "[" * 900 + "]" * 900,
    "5,000 digits": '{"algo": 1' + "1" * 5000 + "}",
    "not JSON": "{oops",
}


def lora_file(tmp_path, field: str, value: str):
    meta = {"sshs_model_hash": SSHS, "ss_output_name": "example person", field: value,
            "ss_network_module": "networks.lora"}
    blob = b"\0" * 8
    tensors = {"lora_unet_x.lora_down.weight": ("F16", [2, 2], blob),
               "lora_unet_x.lora_up.weight": ("F16", [2, 2], blob)}
    return write(tmp_path / "m.safetensors", safetensors_bytes(tensors, meta))


@pytest.mark.parametrize("field", ["ss_network_args", "ss_tag_frequency", "ss_dataset_dirs"])
@pytest.mark.parametrize("label", list(HOSTILE))
def test_hostile_json_metadata_keeps_the_other_evidence(tmp_path, field, label):
    header = read_header(lora_file(tmp_path, field, HOSTILE[label]))
    guess = guess_kind(header)
    assert guess.family == "lora"
    signals = header_signals(header)
    assert signals["hdr_autov3_full"] == [SSHS]


@pytest.mark.parametrize("label", list(HOSTILE))
def test_inspect_prints_a_file_with_hostile_metadata(tmp_path, cli, label):
    path = lora_file(tmp_path, "ss_network_args", HOSTILE[label])
    for args in (["inspect", str(path)], ["inspect", str(path), "--json"]):
        out = cli(*args)
        assert out.returncode == 0, out.stderr[-500:]
        assert "Traceback" not in out.stderr


def test_metadata_json_parses_real_values():
    assert metadata_json('{"algo": "lokr", "conv_dim": "4"}') == {"algo": "lokr", "conv_dim": "4"}
    assert metadata_json(json.dumps({"10_example person": {"example": 40}})) == {"10_example person": {"example": 40}}
    assert metadata_json(None) is None and metadata_json("") is None


def test_deeply_nested_header_is_a_safetensors_error():
    for raw in (b'{"t": {"dtype": ' + b"[" * 900 + b"]" * 900 + b"}}", b'{"a": ' + b"[" * 50 + b"]" * 50 + b"}"):
        with pytest.raises(SafetensorsError, match="nested"):
            parse_header(raw, header_len=len(raw), file_size=None)
