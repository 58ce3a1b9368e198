"""The notification outbox: events written in the same transaction as the change they report.

A new match, a match changing state, a mirror found gone and a failed sweep each add a
`notify_event` row, and one `notify_delivery` row per active channel of the event's bank that
listens to its kind, through the session that makes the change. A rolled-back transaction therefore
leaves no event, and a committed one always has its events: nothing is lost on a crash, and the
deliverer (services/notify.py) sends from these rows later, at least once.

Lifecycle:  change + event + deliveries (one transaction)  ->  pending  ->  sending (claimed by one
deliverer, compare-and-set)  ->  delivered | pending again after a backoff | failed (gave up)

The lower layers (match, sweep) call this module; it imports only the store. Payloads carry ids,
states, hub/repo/path; names (the entry's, which is usually a real person's, the bank's, a
reviewer's) go under "names" and are sent only to channels with include_names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mirrorwatch.store.models import (
    Bank,
    Entry,
    HubFile,
    HubRepo,
    Match,
    NotifyChannel,
    NotifyDelivery,
    NotifyEvent,
    utcnow,
)

MATCH_NEW = "match.new"
MATCH_STATE = "match.state"
MIRROR_GONE = "mirror.gone"
SWEEP_FAILED = "sweep.failed"
TEST = "test"
# The kinds a channel may listen to (a test event goes only to the channel it tests).
EVENT_KINDS: tuple[str, ...] = (MATCH_NEW, MATCH_STATE, MIRROR_GONE, SWEEP_FAILED)


def _channels(session: Session, bank_ids: set[int | None]) -> list[tuple[int, int, list[str]]]:
    """(channel id, bank id, kinds) of the active channels of these banks (every bank for None)."""
    q = select(NotifyChannel.id, NotifyChannel.bank_id, NotifyChannel.kinds).where(NotifyChannel.active.is_(True))
    if None not in bank_ids:
        q = q.where(NotifyChannel.bank_id.in_(sorted(b for b in bank_ids if b is not None)))
    return [(cid, bid, list(kinds or [])) for cid, bid, kinds in session.execute(q.order_by(NotifyChannel.id))]


def emit_many(session: Session, events: list[dict[str, Any]]) -> list[int]:
    """Add events ({"kind", "bank_id", "match_id", "payload"}) and their deliveries to the session's
    transaction; returns the event ids. An event no active channel listens to is still recorded (the
    log), and has no deliveries. An event with bank_id None (a failed sweep) goes to every bank's
    channels that listen to its kind."""
    if not events:
        return []
    chans = _channels(session, {e.get("bank_id") for e in events})
    now = utcnow()
    rows = [NotifyEvent(kind=e["kind"], bank_id=e.get("bank_id"), match_id=e.get("match_id"),
                        payload=e.get("payload") or {}, created_at=now) for e in events]
    session.add_all(rows)
    session.flush()
    deliveries = []
    for ev in rows:
        for cid, bid, kinds in chans:
            if ev.kind in kinds and (ev.bank_id is None or ev.bank_id == bid):
                deliveries.append(NotifyDelivery(channel_id=cid, event_id=ev.id, match_id=ev.match_id,
                                                 status="pending", attempts=0, next_attempt_at=now, created_at=now))
    if deliveries:
        session.add_all(deliveries)
        session.flush()
    return [ev.id for ev in rows]


def emit(session: Session, kind: str, *, bank_id: int | None, match_id: int | None = None,
         payload: dict[str, Any] | None = None) -> int:
    """Add one event (and its deliveries) to the session's transaction; returns its id."""
    return emit_many(session, [{"kind": kind, "bank_id": bank_id, "match_id": match_id, "payload": payload}])[0]


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


def match_facts(session: Session, match_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """What an event says about each match: ids, state, tier, score, hub/repo/path, and (under
    "names") the entry's and bank's names."""
    ids = sorted(set(match_ids))
    out: dict[int, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        q = (select(Match.id, Match.state, Match.tier, Match.score, Match.entry_id, Match.created_at,
                    Match.scan_run_id, Entry.bank_id, Entry.name, Bank.name, HubRepo.hub, HubRepo.repo_id,
                    HubFile.path, HubFile.sha256, HubFile.id)
             .join(Entry, Entry.id == Match.entry_id).join(Bank, Bank.id == Entry.bank_id)
             .join(HubFile, HubFile.id == Match.hub_file_id).join(HubRepo, HubRepo.id == HubFile.repo_pk)
             .where(Match.id.in_(ids[i : i + 500])))
        for (mid, state, tier, score, entry_id, created, run_id, bank_id, entry_name, bank_name, hub, repo_id,
             path, sha, file_id) in session.execute(q):
            out[mid] = {
                "bank_id": bank_id,
                "match": {"id": mid, "state": state, "tier": tier, "score": round(float(score), 4),
                          "entry_id": entry_id, "bank_id": bank_id, "created_at": _iso(created),
                          "scan_run_id": run_id},
                "mirror": {"hub": hub, "repo_id": repo_id, "path": path, "file_id": file_id, "sha256": sha},
                "names": {"entry": entry_name, "bank": bank_name},
            }
    return out


def match_events(session: Session, kind: str, match_ids: Iterable[int], *,
                 changes: dict[int, dict[str, Any]] | None = None, common: dict[str, Any] | None = None) -> list[int]:
    """One event of `kind` per match (in match id order). What moved (from, to, by, reason; names
    such as the reviewer's under "names") is `changes[match id]`, else `common`."""
    facts = match_facts(session, match_ids)
    events = []
    for mid in sorted(facts):
        f = facts[mid]
        payload: dict[str, Any] = {"match": f["match"], "mirror": f["mirror"], "names": dict(f["names"])}
        ch = (changes or {}).get(mid, common)
        if ch:
            ch = dict(ch)
            payload["names"].update(ch.pop("names", None) or {})
            payload["change"] = ch
        events.append({"kind": kind, "bank_id": f["bank_id"], "match_id": mid, "payload": payload})
    return emit_many(session, events)


def move_matches(session: Session, file_ids: list[int], sources: Iterable[str], target: str, *,
                 reason: str, detail: str | None = None, gone: bool = False) -> list[int]:
    """The system moves the matches of these hub files from any of `sources` to `target` (a mirror
    removed, a mirror back) and records one `match.state` event per match moved, with the state it
    left; with `gone`, also one `mirror.gone` event per match. Returns the ids moved. One UPDATE per
    source state, with RETURNING, so the recorded old state is exactly the one replaced even beside
    a concurrent writer."""
    if not file_ids:
        return []
    now = utcnow()
    moved: dict[int, str] = {}
    wanted = [st for st in dict.fromkeys(sources) if st != target]
    for i in range(0, len(file_ids), 500):
        # (one cheap read first: most files a sweep finds gone hold no match, and then no UPDATE runs)
        present = set(session.scalars(select(Match.state).where(
            Match.hub_file_id.in_(file_ids[i : i + 500]), Match.state.in_(wanted)).distinct()))
        for state in (st for st in wanted if st in present):
            res = session.execute(
                update(Match).where(Match.hub_file_id.in_(file_ids[i : i + 500]), Match.state == state)
                .values(state=target, updated_at=now).returning(Match.id)
                .execution_options(synchronize_session=False)
            )
            for (mid,) in res:
                moved[mid] = state
    if not moved:
        return []
    # ORM objects of these matches in this session must not write their stale state back
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Match) and obj.id in moved:
            session.expire(obj, ["state", "updated_at"])
    change = {mid: {"from": old, "to": target, "by": "system", "reason": reason,
                    **({"detail": detail} if detail else {})} for mid, old in moved.items()}
    match_events(session, MATCH_STATE, list(moved), changes=change)
    if gone:
        match_events(session, MIRROR_GONE, list(moved), changes=change)
    return sorted(moved)
