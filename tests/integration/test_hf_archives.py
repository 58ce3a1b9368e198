"""Archives on the Hugging Face sweep (issue 10 item 2 on `scan hf`): a zip of LoRAs in a dataset-like
repo of the local test hub is read by range through the resolver, its members' CRC-32s (and sizes)
are leads, a lead is confirmed by reading that member alone, and the match names the member. Hostile
archives are recorded as the sweep's errors and the sweep goes on."""

from __future__ import annotations

import io
import struct
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from sqlalchemy import select

from bankfixtures import bank_with_signals
from mirrorwatch.formats.archives import ARCHIVE_EXTENSIONS
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
from mirrorwatch.hubs.retry import RetryPolicy
from mirrorwatch.store.models import HubFile, HubRepo, Match, ScanError
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf

ARCHIVE_REPO = "archivist-1/removed-pack"


def lora(seed: int, n: int = 60_000) -> bytes:
    """A small generated safetensors LoRA (one U8 tensor of varied bytes)."""
    header = b'{"lora_up.weight":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (n, n)
    return struct.pack("<Q", len(header)) + header + bytes((seed * 29 + i * 7) % 251 for i in range(n))


def zip_bytes(members: list[tuple[str, bytes, bool]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, deflate in members:
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return buf.getvalue()




EXTENSIONS = SweepOptions().extensions + ARCHIVE_EXTENSIONS  # what `scan hf` sweeps by default (--archives)


def run(db, running) -> dict:
    opts = SweepOptions(scope={"sort": "createdAt"}, extensions=EXTENSIONS, concurrency=4)
    return Sweep(db, hf(running, extensions=EXTENSIONS), opts).run().to_dict()


def matches(db) -> dict[int, tuple[str, str, list]]:
    with db.session() as s:
        rows = s.execute(select(Match.entry_id, HubRepo.repo_id, HubFile.path, Match.evidence)
                         .join(HubFile, HubFile.id == Match.hub_file_id)
                         .join(HubRepo, HubRepo.id == HubFile.repo_pk)).all()
    return {eid: (repo, path, ev) for eid, repo, path, ev in rows}


def scan_errors(db) -> set[tuple[str | None, str | None, str]]:
    with db.session() as s:
        return {(e.repo_id, e.path, e.reason) for e in s.scalars(select(ScanError))}


def test_hf_sweep_matches_a_zip_member_with_few_range_reads(db, testhub):  # noqa: F811
    loras = [lora(i) for i in range(6)]
    hashes = [hash_bytes(x) for x in loras]
    pack = zip_bytes([(f"pack/model_{i}.safetensors", x, i % 2 == 1) for i, x in enumerate(loras)])
    ids = bank_with_signals(db, {
        # banked by CRC-32 and file size (Civitai's listing has both, and the SHA256): a sized lead,
        # confirmed by reading the member (a CRC-32 alone is too short to be a match)
        "Person A": {"crc32": hashes[2].crc32, "size": str(len(loras[2])), "sha256": hashes[2].sha256},
        # banked by SHA256 only: no lead in a central directory (it lists CRC-32s), never read
        "Person B": {"sha256": hashes[4].sha256},
        "Person C": {"sha256": "ab" * 32},  # in no file
    })
    running = testhub([Repo(ARCHIVE_REPO, files=[RepoFile("removed_pack.zip", content=pack, lfs=True),
                                                  RepoFile("README.md", content=b"# pack\n")])])
    summary = run(db, running)
    assert summary["status"] == "finished"
    got = matches(db)
    assert set(got) == {ids["Person A"]}
    repo, path, ev = got[ids["Person A"]]
    assert (repo, path) == (ARCHIVE_REPO, "removed_pack.zip!pack/model_2.safetensors")  # the member's own row
    assert ev[0]["kind"] == "archive_member" and ev[0]["member"] == "pack/model_2.safetensors"
    assert ev[0]["lead"] == "crc32 + size" and ev[0]["size"] == len(loras[2])
    hashed = [e for e in ev if e["kind"] == "hash"]
    forms = {e["form"]: e["value"] for e in hashed}
    assert forms == {"crc32": hashes[2].crc32, "sha256": hashes[2].sha256} and all(e["member"] == "pack/model_2.safetensors" for e in hashed)
    # range requests to the archive: at most 3 for its listing, plus one bounded read for the one lead
    stats = running.stats
    assert stats.by_endpoint["resolve_get"] <= 3 + 1, stats.by_endpoint
    assert stats.by_endpoint["resolve_get"] >= 2  # (it was read: the tail, then the lead)
    # bytes sent in range answers: the listing's tail and directory, and the one member, not the archive
    assert stats.range_bytes < len(loras[2]) + 70_000 + 4096 < len(pack)
    assert running.errors == [] and not scan_errors(db)


def test_a_large_member_is_streamed_in_one_more_request(db, testhub):  # noqa: F811
    big = lora(7, n=5_000_000)  # past the 4 MiB first read: the rest comes as one streamed Range GET
    h = hash_bytes(big)
    pack = zip_bytes([("a.safetensors", lora(1), False), ("big/b.safetensors", big, False)])
    ids = bank_with_signals(db, {"Person A": {"crc32": h.crc32, "size": str(len(big)), "sha256": h.sha256}})
    running = testhub([Repo(ARCHIVE_REPO, files=[RepoFile("pack.zip", content=pack, lfs=True)])])
    assert run(db, running)["status"] == "finished"
    got = matches(db)
    assert set(got) == {ids["Person A"]} and got[ids["Person A"]][2][0]["member"] == "big/b.safetensors"
    assert {e["form"] for e in got[ids["Person A"]][2] if e["kind"] == "hash"} == {"crc32", "sha256"}
    assert running.stats.by_endpoint["resolve_get"] <= 3 + 2, running.stats.by_endpoint


def test_hostile_zips_on_the_hub_are_recorded_and_the_sweep_goes_on(db, testhub):  # noqa: F811
    good, escaping, planted = lora(1), lora(2), lora(3)
    hg, he, hp = hash_bytes(good), hash_bytes(escaping), hash_bytes(planted)
    bomb = bytes(40_000_000)  # deflates ~1000:1: its declared ratio is refused before anything is read
    hostile = zip_bytes([("bomb.safetensors", bomb, True), ("../escape.safetensors", escaping, False),
                         ("fine.safetensors", good, False)])
    garbage = b"PK\x03\x04" + b"\x00" * 5000  # no end record at all
    ids = bank_with_signals(db, {
        "Person G": {"crc32": hg.crc32, "size": str(len(good)), "sha256": hg.sha256},
        "Person E": {"crc32": he.crc32, "sha256": he.sha256},  # only in the member with a `../` name
        "Person P": {"sha256": hp.sha256},  # a plain re-upload in another repo
        "Person Z": {"crc32": hash_bytes(bomb).crc32, "size": str(len(bomb))},
    })
    running = testhub([
        Repo("hostile-1/pack", files=[RepoFile("hostile.zip", content=hostile, lfs=True),
                                      RepoFile("garbage.zip", content=garbage, lfs=True),
                                      # listed with a size, but the hub cannot serve its bytes (404)
                                      RepoFile("ghost.zip", size=123_456, lfs=True)]),
        Repo("plain-1/lora", files=[RepoFile("lora.safetensors", content=planted)]),
    ])
    summary = run(db, running)
    assert summary["status"] == "finished"
    got = matches(db)
    assert set(got) == {ids["Person G"], ids["Person P"]}
    assert got[ids["Person G"]][:2] == ("hostile-1/pack", "hostile.zip!fine.safetensors")
    assert got[ids["Person G"]][2][0]["member"] == "fine.safetensors"
    assert got[ids["Person P"]][:2] == ("plain-1/lora", "lora.safetensors")
    errors = scan_errors(db)
    by_path = {p: r for _repo, p, r in errors}
    assert "zip bomb" in by_path["hostile.zip!bomb.safetensors"]
    assert by_path["hostile.zip!../escape.safetensors"] == "archive member skipped: path climbs out of the archive (..)"
    assert by_path["garbage.zip"].startswith("archive not read:")
    assert by_path["ghost.zip"].startswith("archive not read:")
    assert all(repo == "hostile-1/pack" for repo, _p, _r in errors)
    assert running.errors == []
    # nothing of the bomb was read: its member data is never asked for
    assert running.stats.range_bytes < 1_000_000


class _Origin(BaseHTTPRequestHandler):
    """A bare origin recording each request's Authorization; a 302 elsewhere, or 16 bytes in a 206
    whatever range was asked (more than asked: the reader must stop at the length it wanted)."""

    seen: list[str | None] = []
    redirect_to: str | None = None

    def do_GET(self):
        type(self).seen.append(self.headers.get("Authorization"))
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Length", "16")
        self.end_headers()
        self.wfile.write(b"0123456789abcdef")

    def log_message(self, *args):
        pass


def test_archive_reads_send_the_token_to_the_hub_only_and_never_read_past_the_range(hf_env):  # noqa: F811
    servers = []

    def serve(**attrs) -> ThreadingHTTPServer:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), type("O", (_Origin,), {"seen": [], **attrs}))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    cdn = serve()
    origin = serve(redirect_to=f"http://127.0.0.1:{cdn.server_port}/cdn/blob")
    try:
        hub = HuggingFaceHub(f"http://127.0.0.1:{origin.server_port}", token="hf_secret_for_this_test",
                             extensions=EXTENSIONS, retry=RetryPolicy(base_s=0.01, cap_s=0.05))
        f = SimpleNamespace(repo=SimpleNamespace(repo_id="someone/pack"), path="p.zip", revision="main", size=16)
        read, size, stream = hub.archive_reader(f)
        assert size == 16 and read(0, 4) == b"0123"
        assert b"".join(stream(2, 6)) == b"012345"  # (the origin ignores the offset; the length holds)
        assert origin.RequestHandlerClass.seen == ["Bearer hf_secret_for_this_test"] * 2
        assert len(cdn.RequestHandlerClass.seen) == 2 and set(cdn.RequestHandlerClass.seen) == {None}
        # not an archive, or not among the hub's extensions: no reader
        assert hub.archive_reader(SimpleNamespace(repo=f.repo, path="m.safetensors", revision=None, size=9)) is None
        plain = HuggingFaceHub(f"http://127.0.0.1:{origin.server_port}")
        assert plain.archive_reader(f) is None
    finally:
        for srv in servers:
            srv.shutdown()
