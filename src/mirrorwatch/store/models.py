"""SQLAlchemy 2 models: the one schema every package reads and writes.

Lifecycle of the data (one way):
  bank/entry/entry_signal  <- imports (sheets, Civitai JSON, original files), later bank expansion
  hub_repo/hub_file        <- sweeps (hub metadata; a file's bytes are never kept)
  match                    <- matching tiers (entry x hub_file, with evidence)
  decision/report          <- reviewers
  audit                    <- every change a person makes
Schema changes go through Alembic migrations in store/migrations/versions/.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Bank(Base):
    """A registry of removed models, e.g. one researcher's sheet or a hub's takedown list."""

    __tablename__ = "bank"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    entries: Mapped[list[Entry]] = relationship(back_populates="bank", cascade="all, delete-orphan")


class Entry(Base):
    """One removed model (usually one Civitai model version)."""

    __tablename__ = "entry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"), index=True)
    # Identity within a bank, for idempotent imports: "v:<version id>", "sha256:<hex>", "m:<model id>" or "n:<name>".
    key: Mapped[str] = mapped_column(String(300))
    name: Mapped[str] = mapped_column(Text, default="")
    name_norm: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(Text)
    civitai_model_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    civitai_version_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    kind: Mapped[str | None] = mapped_column(String(50))
    notes: Mapped[str | None] = mapped_column(Text)
    imported_from: Mapped[str | None] = mapped_column(Text)
    row: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    bank: Mapped[Bank] = relationship(back_populates="entries")
    signals: Mapped[list[EntrySignal]] = relationship(back_populates="entry", cascade="all, delete-orphan")
    __table_args__ = (
        UniqueConstraint("bank_id", "key", name="uq_entry_bank_key"),
        # PostgreSQL only (migration 0008, when pg_trgm can be created): trigram name search. SQLite
        # has its FTS5 index instead (store/fts.py).
        Index("ix_entry_name_trgm", "name_norm", postgresql_using="gin",
              postgresql_ops={"name_norm": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
    )


class EntrySignal(Base):
    """A hash form or other signature known for an entry, with where it came from."""

    __tablename__ = "entry_signal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entry.id", ondelete="CASCADE"))
    form: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(200), default="import")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    entry: Mapped[Entry] = relationship(back_populates="signals")
    __table_args__ = (
        UniqueConstraint("entry_id", "form", "value", name="uq_signal_entry_form_value"),
        Index("ix_signal_value_form", "value", "form"),
    )


class ImportRun(Base):
    """One import into a bank: file, counts, and the row report of rejected rows."""

    __tablename__ = "import_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(Text)
    fmt: Mapped[str] = mapped_column(String(20))
    user: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rejected: Mapped[list[Any]] = mapped_column(JSON, default=list)


class HubRepo(Base):
    """A repository on a hub (or a local folder root) as last seen by a sweep."""

    __tablename__ = "hub_repo"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hub: Mapped[str] = mapped_column(String(40))
    repo_id: Mapped[str] = mapped_column(String(400))
    author: Mapped[str | None] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_modified: Mapped[datetime | None] = mapped_column(DateTime)
    sha: Mapped[str | None] = mapped_column(String(64))
    gated: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # live / gated / disabled / removed / error
    status: Mapped[str] = mapped_column(String(20), default="live")
    error: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    files: Mapped[list[HubFile]] = relationship(back_populates="repo", cascade="all, delete-orphan")
    __table_args__ = (UniqueConstraint("hub", "repo_id", name="uq_hub_repo"),)


class HubFile(Base):
    """A file in a hub repo: metadata and hash forms only, never the bytes."""

    __tablename__ = "hub_file"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("hub_repo.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    revision: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # Other hash forms when known (local folders hash everything; content tier adds autov3_full).
    hashes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    header_signals: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # present / gone / changed
    status: Mapped[str] = mapped_column(String(20), default="present")
    first_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    repo: Mapped[HubRepo] = relationship(back_populates="files")
    __table_args__ = (UniqueConstraint("repo_pk", "path", name="uq_hub_file_path"),)


class Match(Base):
    """An entry found (exactly or probably) in a hub file, with the evidence for it."""

    __tablename__ = "match"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entry.id", ondelete="CASCADE"), index=True)
    hub_file_id: Mapped[int] = mapped_column(ForeignKey("hub_file.id", ondelete="CASCADE"), index=True)
    tier: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # a MatchState value (mirrorwatch.match.states: who may set which)
    state: Mapped[str] = mapped_column(String(20), default="new", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    scan_run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_run.id", ondelete="SET NULL"))
    entry: Mapped[Entry] = relationship()
    hub_file: Mapped[HubFile] = relationship()
    __table_args__ = (UniqueConstraint("entry_id", "hub_file_id", name="uq_match_entry_file"),)


class StatusEvent(Base):
    """Status of a repo or file over time (live, removed, gated, disabled, file gone, file changed)."""

    __tablename__ = "status_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("hub_repo.id", ondelete="CASCADE"), index=True)
    hub_file_id: Mapped[int | None] = mapped_column(ForeignKey("hub_file.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str | None] = mapped_column(Text)


class ScanRun(Base):
    """One sweep: its parameters, a checkpoint committed as it advances, and counts."""

    __tablename__ = "scan_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # running / finished / failed / interrupted
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)


class SweepLock(Base):
    """One sweep per hub scope at a time: the holder's run, process and heartbeat (a lock whose
    heartbeat is older than `store.locks.STALE_AFTER` belongs to a dead process and may be taken)."""

    __tablename__ = "sweep_lock"
    scope_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[int | None] = mapped_column(Integer)
    holder: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ScanError(Base):
    """What a sweep skipped and why (a repo that kept failing, a malformed answer)."""

    __tablename__ = "scan_error"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("scan_run.id", ondelete="CASCADE"), index=True)
    repo_id: Mapped[str | None] = mapped_column(String(400))
    path: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # viewer / reviewer / admin
    role: Mapped[str] = mapped_column(String(20), default="viewer")
    password_hash: Mapped[str | None] = mapped_column(String(300))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Moves on when the account's web sessions end (sign-out, password change, an admin): sessions
    # carry the epoch they were signed in under (services/users.py).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class Decision(Base):
    """A reviewer's decision on a match (the match's state follows the latest decision)."""

    __tablename__ = "decision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("match.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Report(Base):
    """A takedown/abuse report to one hub, built from confirmed mirrors."""

    __tablename__ = "report"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hub: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # draft / sent / closed
    state: Mapped[str] = mapped_column(String(20), default="draft")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(Text)


class ReportItem(Base):
    __tablename__ = "report_item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("match.id", ondelete="CASCADE"), index=True)
    __table_args__ = (UniqueConstraint("report_id", "match_id", name="uq_report_item"),)


class Audit(Base):
    """Who did what, when: decisions, imports, reports, account changes."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    user: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FileSignal(Base):
    """A signal read from a hub file beyond its sha256: other hash forms (AutoV3 from the content
    tier), header evidence (sshs_model_hash, kohya training-run ids, names). Indexed by value so a
    signal an entry learns later finds the files that carry it (retroactive matching)."""

    __tablename__ = "file_signal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hub_file_id: Mapped[int] = mapped_column(ForeignKey("hub_file.id", ondelete="CASCADE"), index=True)
    form: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(300))
    __table_args__ = (
        UniqueConstraint("hub_file_id", "form", "value", name="uq_file_signal"),
        Index("ix_file_signal_value_form", "value", "form"),
    )


class Fingerprint(Base):
    """A LoRA weight fingerprint of a bank entry's file or of a hub file (never the weights)."""

    __tablename__ = "fingerprint"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entry.id", ondelete="CASCADE"), index=True)
    hub_file_id: Mapped[int | None] = mapped_column(ForeignKey("hub_file.id", ondelete="CASCADE"), index=True)
    origin: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
