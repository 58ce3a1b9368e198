"""`mirrorwatch notify ...`: a bank's notification channels (webhooks, mailboxes), a test message,
the deliverer (`deliver`, once or `--loop`), and the delivery log. Through services/notify.py, the
service the web's notification pages use; changes are audited under the name "cli"."""

from __future__ import annotations

import json
import signal
import sys

import typer
from rich.table import Table

from mirrorwatch.services import notify
from mirrorwatch.services.paging import Page
from mirrorwatch.services.serial import to_json

from .app import app, console, database, err_console
from .output import print_json, term

notify_app = typer.Typer(help="Notifications: webhooks and mailboxes per bank, delivery, the delivery log.",
                         no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("add")
def notify_add(
    bank: str = typer.Argument(..., help="Bank id or name."),
    target: str = typer.Argument(..., help="A webhook URL (http/https) or an email address."),
    kinds: str = typer.Option("", "--kinds", help="Event kinds, comma-separated (default: all): "
                                                  + ", ".join(notify.EVENT_KINDS) + "."),
    digest: str = typer.Option("", "--digest", help="One message per interval (e.g. 15m, 1h, 1d) instead of one "
                                                    "per event."),
    include_names: bool = typer.Option(False, "--include-names", help="Put entry names (usually real people's) "
                                                                       "in messages; off by default."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a webhook or mailbox to a bank. A webhook's signing secret is printed once."""
    made = notify.add_channel(database(), bank, target, kinds=kinds or None, digest=digest or None,
                              include_names=include_names, user="cli")
    if as_json:
        print_json(to_json(made))
        return
    c = made.channel
    console.print(f"channel {c.id}: {c.transport} {term(c.target)} for bank {c.bank_id} ({term(c.bank)}), "
                  f"kinds {', '.join(c.kinds)}, {_digest(c.digest_s)}", highlight=False)
    if made.secret:
        console.print(f"signing secret (shown once): {made.secret}", highlight=False, markup=False)


def _digest(seconds: int | None) -> str:
    return f"digest every {seconds} s" if seconds else "immediate"


@notify_app.command("list")
def notify_list(bank: str = typer.Option(None, "--bank", help="Only this bank's channels (id or name)."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """List notification channels (never their secrets)."""
    rows = notify.list_channels(database(), bank=bank)
    if as_json:
        print_json(to_json(rows, list[notify.ChannelView]))
        return
    if not rows:
        console.print("no channels yet: add one with `mirrorwatch notify add BANK URL-OR-EMAIL`")
        return
    t = Table("id", "bank", "transport", "target", "kinds", "mode", "names", "state", "pending", "delivered", "failed")
    for c in rows:
        t.add_row(str(c.id), term(c.bank), c.transport, term(c.target), ", ".join(c.kinds), _digest(c.digest_s),
                  "yes" if c.include_names else "no", "active" if c.active else "paused", str(c.pending),
                  str(c.delivered), str(c.failed))
    console.print(t)


@notify_app.command("remove")
def notify_remove(channel_id: int = typer.Argument(..., help="Channel id (see `notify list`).")) -> None:
    """Remove a channel (its pending deliveries are dropped)."""
    c = notify.remove_channel(database(), channel_id, user="cli")
    console.print(f"removed channel {c.id} ({c.transport} {term(c.target)})", highlight=False)


@notify_app.command("test")
def notify_test(channel_id: int = typer.Argument(..., help="Channel id (see `notify list`)."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Send a test event to a channel now and show the result (exit 1 when it failed)."""
    d = notify.send_test(database(), channel_id, user="cli")
    if as_json:
        print_json(to_json(d))
    elif d.status == "delivered":
        console.print(f"test event {d.event_id} delivered to channel {channel_id}", highlight=False)
    else:
        err_console.print(f"test event {d.event_id} to channel {channel_id} failed: {term(d.last_error)}",
                          highlight=False)
    if d.status != "delivered":
        raise typer.Exit(1)


@notify_app.command("deliver")
def notify_deliver(
    loop: bool = typer.Option(False, "--loop", help="Keep delivering until stopped (SIGTERM or Ctrl-C finish "
                                                    "the current pass)."),
    every: float = typer.Option(2.0, "--every", min=0.05, max=3600, help="Seconds between passes with --loop."),
    retry_base: float = typer.Option(10.0, "--retry-base", min=0.01, help="First retry after this many seconds."),
    retry_cap: float = typer.Option(3600.0, "--retry-cap", min=0.01, help="Longest wait between retries (s)."),
    max_attempts: int = typer.Option(25, "--max-attempts", min=1, max=1000, help="Give a delivery up after this "
                                                                                 "many attempts."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, max=300, help="Per-request timeout (s)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per pass."),
) -> None:
    """Send the deliveries that are due (and digests whose interval has passed). Safe to run in
    several processes at once: each delivery is claimed before it is sent."""
    db = database()
    policy = notify.RetryPolicy(base_s=retry_base, cap_s=max(retry_cap, retry_base), max_attempts=max_attempts,
                                timeout_s=timeout, lease_s=max(60.0, timeout + 50.0))

    def show(counts: dict) -> None:
        if as_json:
            sys.stdout.write(to_line(counts))
            sys.stdout.flush()
        elif not loop or any(v for k, v in counts.items() if k != "skipped"):
            console.print(", ".join(f"{k} {v}" for k, v in counts.items()), highlight=False)

    if not loop:
        show(notify.deliver_due(db, policy=policy))
        return
    stop = {"now": False}

    def on_signal(_sig, _frame) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    notify.deliver_loop(db, every_s=every, policy=policy, should_stop=lambda: stop["now"], on_pass=show)


def to_line(counts: dict) -> str:
    return json.dumps(counts, sort_keys=True) + "\n"


@notify_app.command("log")
def notify_log(
    bank: str = typer.Option(None, "--bank", help="Bank id or name."),
    channel: int = typer.Option(None, "--channel", help="Channel id."),
    status: str = typer.Option(None, "--status", help="pending, sending, delivered or failed."),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    offset: int = typer.Option(0, "--offset", min=0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The delivery log, newest first."""
    page = notify.list_deliveries(database(), bank=bank, channel_id=channel, status=status, limit=limit, offset=offset)
    if as_json:
        print_json(to_json(page, Page[notify.DeliveryView]))
        return
    if not page.items:
        console.print("no deliveries")
        return
    t = Table("id", "channel", "event", "kind", "match", "status", "attempts", "delivered / next", "last error")
    for d in page.items:
        when = d.delivered_at or d.next_attempt_at
        t.add_row(str(d.id), str(d.channel_id), str(d.event_id), d.kind, str(d.match_id or "-"), d.status,
                  str(d.attempts), when.isoformat(timespec="seconds") + "Z" if when else "-", term(d.last_error or ""))
    console.print(t)
    console.print(f"{len(page.items)} of {page.total}", highlight=False)
