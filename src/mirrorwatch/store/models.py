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

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
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
    # Exchange (services/exchange.py): a global id for the bank's published records, and the last
    # change sequence number handed out to one of its entries.
    uid: Mapped[str | None] = mapped_column(String(32), unique=True, index=True, default=lambda: uuid.uuid4().hex)
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
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
    # active / withdrawn (a withdrawn entry matches no new file and is published as a tombstone)
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    # Change sequence in its bank's feed; NULL = changed since last published (stamped on the next read).
    seq: Mapped[int | None] = mapped_column(BigInteger)
    # Where a subscribed or imported entry came from (feed URL or publisher) and its global id there.
    origin: Mapped[str | None] = mapped_column(Text)
    origin_id: Mapped[str | None] = mapped_column(String(200))
    bank: Mapped[Bank] = relationship(back_populates="entries")
    signals: Mapped[list[EntrySignal]] = relationship(back_populates="entry", cascade="all, delete-orphan")
    __table_args__ = (
        UniqueConstraint("bank_id", "key", name="uq_entry_bank_key"),
        Index("ix_entry_bank_seq", "bank_id", "seq"),
        # PostgreSQL only (migration 0008, when pg_trgm can be created): trigram name search. SQLite
        # has its FTS5 index instead (store/fts.py).
        Index("ix_entry_name_trgm", "name_norm", postgresql_using="gin",
              postgresql_ops={"name_norm": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
    )


# Rows with a name alone merge into the entry of that name without Civitai ids (bank/importer.py; migration
# 0015_stream10m): a partial index, keyed by the name's first 200 characters.
_UNKEYED = "civitai_version_id IS NULL AND civitai_model_id IS NULL"
Index("ix_entry_bank_name_unkeyed", Entry.bank_id, func.substr(Entry.name_norm, 1, 200),
      sqlite_where=text(_UNKEYED), postgresql_where=text(_UNKEYED))

# The name-token index of name search (migration 0016, store/nameindex.py): kept by database triggers,
# never written by the application. SQLite: both tables, WITHOUT ROWID with these primary keys.
# PostgreSQL: name_vocab only, with no unique constraint (concurrent writers never wait on a word), its
# deletion keys in an array column `keys text[]` under a GIN index instead of name_typo's rows, and a GIN
# index over the entry's name words (ix_entry_name_tokens).
NAME_VOCAB = Table(
    "name_vocab", Base.metadata,
    Column("token", Text, primary_key=True),
    Column("docs", BigInteger),  # names holding the word (SQLite; an upper bound), NULL on PostgreSQL
)
NAME_TYPO = Table(  # SQLite only
    "name_typo", Base.metadata,
    Column("key", Text, primary_key=True),  # the word less one character
    Column("token", Text, primary_key=True),
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
    # one of the hub's repo types (HubSpec.repo_types: "model", "dataset", "space", "folder"); a hub
    # may hold repos of different types under one id
    repo_type: Mapped[str] = mapped_column(String(20), default="model", server_default="model")
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
    __table_args__ = (UniqueConstraint("hub", "repo_type", "repo_id", name="uq_hub_repo"),)


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
    # An archive member is a hub_file row of its own (match/archives.py): in its archive's repo, linked
    # to the archive's row, its `path` "<archive path>!<member>" (unique in the repo like any path),
    # `member` its path inside the archive. NULL for plain files.
    archive_file_id: Mapped[int | None] = mapped_column(ForeignKey("hub_file.id", ondelete="CASCADE"), index=True)
    member: Mapped[str | None] = mapped_column(Text)
    # Archive rows: what the last read of the index found and at which content ("key"); member rows:
    # what the index says of the member (compressed size, method, offsets) and how it was read.
    archive_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
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


class WatchJob(Base):
    """One scheduled job of `mirrorwatch watch` (a hub's sweep or recheck, or another registered kind):
    when it last started, succeeded and failed, how many times in a row it failed, when it runs next.
    Times come from the watcher's clock (UTC)."""

    __tablename__ = "watch_job"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    every_s: Mapped[int] = mapped_column(Integer)
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_outcome: Mapped[str | None] = mapped_column(String(20))  # running, ok, failed, interrupted
    last_summary: Mapped[str | None] = mapped_column(String(500))
    last_error: Mapped[str | None] = mapped_column(String(1000))
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime)


class Watcher(Base):
    """The watcher of this database (one row, name "watcher"): who runs it, since when, its last sign
    of life, and how it stopped. The lock itself is the `sweep_lock` row of the same name."""

    __tablename__ = "watcher"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)
    stop_reason: Mapped[str | None] = mapped_column(String(300))


class ContentTask(Base):
    """Content work handed to a distributed engine (Ray) and not yet persisted by its sweep: recorded
    `pending` before it is submitted (a driver that dies leaves it to be re-submitted by the next
    sweep), and `done` with its evidence (hashes, header signals, fingerprint; never bytes) the first
    time a result comes back — written once, keyed by file and content. Deleted once the sweep has
    persisted the file."""

    __tablename__ = "content_task"
    content_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    hub: Mapped[str] = mapped_column(String(40))
    repo_id: Mapped[str] = mapped_column(String(400))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending / done
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (Index("ix_content_task_repo", "hub", "repo_id"),)


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
    # None: the account's full rights. {"exchange_read": [bank ids]}: only the exchange feed of those banks.
    scope: Mapped[dict[str, Any] | None] = mapped_column(JSON)


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


class NotifyEvent(Base):
    """Something to tell the team (a new match, a state change, a mirror gone, a failed sweep), written
    in the same transaction as the change it reports (store/outbox.py): the notification outbox."""

    __tablename__ = "notify_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # match.new / match.state / mirror.gone / sweep.failed / test (store.outbox.EVENT_KINDS)
    kind: Mapped[str] = mapped_column(String(30))
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"), index=True)
    match_id: Mapped[int | None] = mapped_column(Integer, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused: receivers deduplicate by them


class NotifyChannel(Base):
    """Where a bank's events go: a webhook URL or a mailbox, which kinds, at once or as a digest."""

    __tablename__ = "notify_channel"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"), index=True)
    # webhook / email
    transport: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(Text)
    kinds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # None: each event at once; else one message per this many seconds listing the events
    digest_s: Mapped[int | None] = mapped_column(Integer)
    next_digest_at: Mapped[datetime | None] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    include_names: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # HMAC-SHA256 key of a webhook (generated by the app, shown once)
    secret: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class NotifyDelivery(Base):
    """One event to one channel: claimed by a deliverer with a compare-and-set, retried with backoff,
    recorded delivered once."""

    __tablename__ = "notify_delivery"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notify_channel.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("notify_event.id", ondelete="CASCADE"), index=True)
    match_id: Mapped[int | None] = mapped_column(Integer)  # the event's, for in-order delivery per match
    # pending / sending / delivered / failed (gave up)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    batch: Mapped[str | None] = mapped_column(String(64))  # a digest message's id
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    __table_args__ = (
        UniqueConstraint("channel_id", "event_id", name="uq_notify_delivery"),
        Index("ix_notify_delivery_due", "status", "next_attempt_at"),
        Index("ix_notify_delivery_order", "channel_id", "match_id", "status", "event_id"),
    )
class ExchangeSubscription(Base):
    """A local bank kept in sync with another mirrorwatch's feed: where, and how far it has read."""

    __tablename__ = "exchange_subscription"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    remote_bank: Mapped[str | None] = mapped_column(String(32))
    cursor: Mapped[str | None] = mapped_column(String(100))
    verify_key_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (UniqueConstraint("bank_id", "url", name="uq_subscription_bank_url"),)
