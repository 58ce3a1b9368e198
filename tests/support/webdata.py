"""Builders for the web, API, review and report tests (the fixtures are in webfixtures.py).

Test data is built through the real services (create a bank, import a generated sheet, add users
and tokens); sweep output (hub repos, files, matches) is inserted with the models, as a sweep
would write it. Every name is invented."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi.testclient import TestClient

from mirrorwatch.bank.sheets import parse_sheet
from mirrorwatch.services import users
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_sheet
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, HubFile, HubRepo, Match, ScanError, ScanRun, utcnow

SECRET = "test-secret-key-for-sessions"
PASSWORDS = {"ada": "admin-pass-123", "rex": "reviewer-pass-123", "vic": "viewer-pass-123"}
ROLES = {"ada": "admin", "rex": "reviewer", "vic": "viewer"}
FIRST = ["Avery", "Brook", "Corin", "Dana", "Ellis", "Faye", "Gale", "Harper", "Indy", "Jules"]
LAST = ["Placeholder", "Example", "Sampleton", "Fictional", "Madeup", "Testwell"]


def fake_sha(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def sheet_csv(n: int, *, start: int = 0, bad_rows: int = 0) -> bytes:
    """A researcher's sheet: Model Name, Civitai URL, SHA256 — with `bad_rows` malformed hashes at the end."""
    lines = ["Model Name,Civitai URL,SHA256"]
    for i in range(start, start + n):
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]} {i:03d} - LoRA"
        lines.append(f"{name},https://civitai.com/models/{500000 + i}/x?modelVersionId={700000 + i},{fake_sha(f'e{i}')}")
    for j in range(bad_rows):
        lines.append(f"Broken Row {j},https://civitai.com/models/{900000 + j},not-a-hash-{j}")
    return ("\n".join(lines) + "\n").encode()


def rich_sheet_csv(n: int, *, start: int = 100) -> bytes:
    """A sheet with every hash form Civitai shows (for lookups by each kind and length)."""
    lines = ["Model Name,Civitai URL,SHA256,AutoV1,AutoV3,CRC32,BLAKE3"]
    for i in range(start, start + n):
        h = fake_sha(f"e{i}")
        lines.append(f"{FIRST[i % len(FIRST)]} Madeup {i:03d},https://civitai.com/models/{500000 + i},{h},"
                     f"{fake_sha(f'v1{i}')[:8]},{fake_sha(f'v3{i}')[:12]},{fake_sha(f'crc{i}')[:8]},{fake_sha(f'b3{i}')}")
    return ("\n".join(lines) + "\n").encode()


@dataclass
class World:
    db: Database
    bank_id: int
    bank2_id: int
    entries: list[int]
    matches: list[int]  # all, in creation order
    new_matches: list[int]
    repos: list[int]
    users: dict[str, int]
    tokens: dict[str, str]
    scan_run: int
    extra: dict = field(default_factory=dict)

    def entry_sha(self, i: int) -> str:
        return fake_sha(f"e{i}")


def add_mirror(db: Database, entry_id: int, *, hub: str = "hf", repo_id: str, author: str | None, path: str,
               sha256: str | None, tier: int = 1, score: float = 1.0, state: str = "new",
               evidence: list | None = None, age_days: int = 0, scan_run_id: int | None = None) -> tuple[int, int]:
    """Insert what a sweep writes for one found mirror: repo (get or create), file, match."""
    now = utcnow() - timedelta(days=age_days)
    with db.session() as s:
        repo = s.query(HubRepo).filter_by(hub=hub, repo_id=repo_id).one_or_none()
        if repo is None:
            repo = HubRepo(hub=hub, repo_id=repo_id, author=author, created_at=now, last_modified=now,
                           sha="a" * 40, first_seen=now, last_seen=now)
            s.add(repo)
            s.flush()
        f = HubFile(repo_pk=repo.id, path=path, revision="a" * 40, size=151_000_000, sha256=sha256,
                    first_seen=now, last_seen=now)
        s.add(f)
        s.flush()
        ev = evidence if evidence is not None else [{"tier": 1, "kind": "hash", "form": "sha256", "value": sha256},
                                                    {"tier": 1, "kind": "hash", "form": "autov2", "value": (sha256 or "")[:10]}]
        m = Match(entry_id=entry_id, hub_file_id=f.id, tier=tier, score=score, evidence=ev, state=state,
                  created_at=now, updated_at=now, scan_run_id=scan_run_id)
        s.add(m)
        s.flush()
        return m.id, repo.id


def build_world(db: Database, *, n_entries: int = 30) -> World:
    bank = create_bank(db, "Synthetic removed models", description="generated for tests", source="tests", user="setup")
    bank2 = create_bank(db, "Second bank", user="setup")
    import_sheet(db, bank.name, parse_sheet(sheet_csv(n_entries), name="removed.csv"), "removed.csv", user="setup")
    import_sheet(db, bank2.name, parse_sheet(rich_sheet_csv(3, start=100), name="second.csv"), "second.csv",
                 user="setup")
    with db.session() as s:
        entries = [e.id for e in s.query(Entry).filter_by(bank_id=bank.id).order_by(Entry.id)]
        run = ScanRun(source="hf", params={"scope": "all"}, counts={"listed": 12, "matches": 9, "throttled": 0},
                      checkpoint={"quota": {"api": {"remaining": 417, "quota": 500, "reset_in_s": 120.0}}},
                      status="finished", finished_at=utcnow())
        s.add(run)
        s.flush()
        s.add(ScanError(scan_run_id=run.id, repo_id="someone/broken", reason="HTTP 500 after 5 tries"))
        run_id = run.id
    matches, repos = [], []
    # A batch re-uploader: one account, several removed models, generic names.
    for k, i in enumerate(range(0, 6)):
        mid, rid = add_mirror(db, entries[i], repo_id=f"archivist9/LORA-{k}", author="archivist9",
                              path=f"lora_{k}.safetensors", sha256=fake_sha(f"e{i}"), age_days=k, scan_run_id=run_id)
        matches.append(mid)
        repos.append(rid)
    # Scattered single re-uploads, one header-tier match.
    mid, rid = add_mirror(db, entries[6], repo_id="someuser/Test-model", author="someuser", path="model.safetensors",
                          sha256=fake_sha("e6"))
    matches.append(mid)
    repos.append(rid)
    mid, rid = add_mirror(db, entries[7], repo_id="other/converted", author="other", path="w/fp16.safetensors",
                          sha256=fake_sha("different"), tier=2, score=0.9,
                          evidence=[{"tier": 2, "kind": "header", "field": "sshs_model_hash", "value": "ab" * 32},
                                    {"tier": 2, "kind": "header", "field": "ss_output_name", "value": "lora output"}])
    matches.append(mid)
    repos.append(rid)
    # An old one already confirmed (ready for a report) and one on a second hub.
    mid, rid = add_mirror(db, entries[8], repo_id="old/keep", author="old", path="keep.safetensors",
                          sha256=fake_sha("e8"), state="confirmed", age_days=40)
    matches.append(mid)
    mid2, _ = add_mirror(db, entries[9], hub="local", repo_id="/srv/models", author=None, path="x/y.safetensors",
                         sha256=fake_sha("e9"), state="confirmed")
    matches.append(mid2)
    uid, tokens = {}, {}
    for name, role in ROLES.items():
        u = users.add_user(db, name, role, PASSWORDS[name], actor="setup")
        uid[name] = u.id
        tokens[name] = users.create_token(db, name, f"{name}-tests", actor="setup")[1]
    db.engine.dispose()
    new = matches[:8]
    return World(db, bank.id, bank2.id, entries, matches, new, repos, uid, tokens, run_id,
                 extra={"confirmed": [mid, mid2]})


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def login(client: TestClient, name: str, password: str | None = None) -> str:
    """Sign in through the real form; returns the session's CSRF token."""
    page = client.get("/login")
    token = csrf_from(page.text)
    r = client.post("/login", data={"name": name, "password": password or PASSWORDS[name], "csrf_token": token,
                                    "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    home = client.get("/")
    assert home.status_code == 200
    return csrf_from(home.text)
