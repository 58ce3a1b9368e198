"""The sweep's hashes and the content tier's bounded reads must not depend on the Xet protocol.

In huggingface_hub (2.x) these switch to Xet (hf_xet) when an answer carries `X-Xet-Hash` and a
`Link rel="xet-auth"` (or a tree entry carries `xetHash`): `hf_hub_download` / `snapshot_download`
(file_download's `xet_get`), `HfFileSystem.get_file`, and the uploads. `get_hf_file_metadata` only
parses `xet_file_data`, but its `etag` falls back to the final answer's `ETag`, which past a same-origin
redirect to a Xet bridge is the Xet hash, not a sha256. The hub port uses none of them: its HEADs,
range GETs and streamed GETs are plain HTTP on the client's session (tests/integration/test_hub_realism.py
proves it against Xet-style answers)."""

from __future__ import annotations

import ast
from pathlib import Path

import mirrorwatch.hubs.huggingface as hf_pkg

XET_SWITCHING = {"hf_hub_download", "snapshot_download", "HfFileSystem", "HfFileSystemFile", "xet_get",
                 "get_hf_file_metadata", "hf_xet", "_xet"}


def test_the_hub_port_never_calls_what_switches_to_xet():
    used: dict[str, set[str]] = {}
    for path in Path(hf_pkg.__file__).parent.glob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names.add(node.module or "")
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Name):
                names.add(node.id)
        found = {n for n in names if n in XET_SWITCHING or n.split(".")[-1] in XET_SWITCHING}
        if found:
            used[path.name] = found
    assert used == {}
