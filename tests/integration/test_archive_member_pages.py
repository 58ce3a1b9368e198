"""A match on an archive member, as people see it: the match, repo and report pages and the report
text say "member M of archive A" and how it was matched; GET /api/files finds the member by its
CRC-32 and names hub, repo, archive path and member; a recheck takes the member with its archive."""

from __future__ import annotations

from sqlalchemy import select

from mirrorwatch.hubs.base import LIVE, RepoStatus
from mirrorwatch.services.reports import build_reports, render_text
from mirrorwatch.store.models import FileSignal, HubFile, HubRepo, Match, utcnow
from mirrorwatch.sweep.recheck import recheck

pytest_plugins = ("webfixtures",)

CRC = "5eed1e55"


def _member_match(world) -> tuple[int, int, int]:
    """(repo pk, archive row id, match id) of a confirmed CRC-32 + size match on a zip's member."""
    now = utcnow()
    with world.db.session() as s:
        repo = HubRepo(hub="hf", repo_id="archivist7/pack", author="archivist7", status="live", first_seen=now,
                       last_seen=now)
        s.add(repo)
        s.flush()
        archive = HubFile(repo_pk=repo.id, path="removed/pack.zip", size=9_000_000, sha256="12" * 32, hashes={},
                          status="present", archive_info={"key": "sha256:" + "12" * 32, "kind": "zip", "members": 1})
        s.add(archive)
        s.flush()
        member = HubFile(repo_pk=repo.id, path="removed/pack.zip!loras/person_x.safetensors", size=4_000_000,
                         sha256="34" * 32, hashes={"crc32": CRC}, status="present", archive_file_id=archive.id,
                         member="loras/person_x.safetensors", archive_info={"method": "stored"})
        s.add(member)
        s.flush()
        s.add(FileSignal(hub_file_id=member.id, form="crc32", value=CRC))
        m = Match(entry_id=world.entries[3], hub_file_id=member.id, tier=1, score=0.8, state="confirmed", evidence=[
            {"tier": 1, "kind": "archive_member", "member": "loras/person_x.safetensors", "archive": "removed/pack.zip",
             "lead": "crc32 + size", "size": 4_000_000,
             "confirmed": "member read alone: its CRC-32 and size agree with the bank's (no full hash banked)"},
            {"tier": 1, "kind": "hash", "form": "crc32", "value": CRC, "member": "loras/person_x.safetensors"}])
        s.add(m)
        s.flush()
        return repo.id, archive.id, m.id


def test_pages_and_report_name_the_member(world, client_as, api):
    repo_pk, _archive_id, mid = _member_match(world)
    c, _csrf = client_as("rex")
    page = c.get(f"/matches/{mid}").text
    assert "loras/person_x.safetensors</span> of archive removed/pack.zip" in page
    assert "lead by crc32 + size" in page and "no full hash banked" in page
    assert 'href="https://huggingface.co/archivist7/pack/blob/' in page and "pack.zip!" not in page.split("href=")[-1]
    repo = c.get(f"/repos/{repo_pk}").text
    assert "of archive removed/pack.zip" in repo
    (rep,) = build_reports(world.db, [mid], "rex")
    text = render_text(rep)
    assert "File: member loras/person_x.safetensors of archive removed/pack.zip, 4000000 bytes" in text
    assert "member loras/person_x.safetensors of archive removed/pack.zip: lead by crc32 + size" in text
    assert "of archive removed/pack.zip" in c.get(f"/reports/{rep.id}").text
    csv_text = c.get(f"/reports/{rep.id}/download/csv").text
    assert csv_text.splitlines()[0].endswith(",member,archive")
    assert csv_text.splitlines()[1].endswith(",loras/person_x.safetensors,removed/pack.zip")
    # the reverse look-up over the API: hub, repo, archive path and member
    files = api("vic").get("/api/files", params={"hash": CRC}).json()["files"]
    assert [(f["hub"], f["repo_id"], f["path"], f["member"]) for f in files] == [
        ("hf", "archivist7/pack", "removed/pack.zip", "loras/person_x.safetensors")]
    assert files[0]["matches"][0]["match_id"] == mid


class _Hub:
    name = "hf"
    repo_types = ("model", "dataset", "space")

    def __init__(self, paths: list[str]) -> None:
        from mirrorwatch.hubs.base import RemoteFile

        self.files = [RemoteFile(path=p, size=1) for p in paths]

    def repo_status(self, repo_id: str, *, repo_type: str | None = None) -> RepoStatus:
        return RepoStatus(LIVE, "", files=self.files)


def test_recheck_takes_members_with_their_archive(world):
    _repo_pk, archive_id, mid = _member_match(world)

    def states() -> tuple[str, str, str]:
        with world.db.session() as s:
            member = s.scalar(select(HubFile).where(HubFile.archive_file_id == archive_id))
            return s.get(HubFile, archive_id).status, member.status, s.get(Match, mid).state

    recheck(world.db, _Hub(["removed/pack.zip"]), repo_ids=["archivist7/pack"])
    assert states() == ("present", "present", "confirmed")
    recheck(world.db, _Hub(["other.safetensors"]), repo_ids=["archivist7/pack"])  # the archive is gone
    assert states() == ("gone", "gone", "gone")
    recheck(world.db, _Hub(["removed/pack.zip"]), repo_ids=["archivist7/pack"])  # and back
    assert states() == ("present", "present", "new")
