"""The watch config file (TOML): what to sweep and recheck, and how often.

    [hubs.hf]                      # one section per hub (hubs/registry.py)
    sweep_every = "15m"            # incremental sweep
    recheck_every = "6h"           # recheck of open mirrors
    content = false                # content tier (transient download, fingerprint)
    author = "someone"             # ... and the scope options `mirrorwatch scan hf` takes

    [hubs.dir]
    path = "/srv/uploads"
    sweep_every = "1h"

Everything is checked before anything starts: an unknown section or key, a wrong type, a duration
that is not one (or is zero, negative, or over a year), an unknown hub, a folder that does not exist
are each refused with one line naming the file, the section and the key (InvalidInput)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from mirrorwatch.errors import InvalidInput, MirrorwatchError
from mirrorwatch.hubs.base import Scope
from mirrorwatch.hubs.registry import HUBS
from mirrorwatch.services.sweeps import parse_exts, parse_since, parse_size
from mirrorwatch.watch.jobs import JOB_KINDS, JobConfig

MAX_CONFIG_BYTES = 1_000_000
MIN_EVERY = timedelta(seconds=1)
MAX_EVERY = timedelta(days=366)
KNOWN_REPO_TYPES = ("model", "dataset", "space")

_DURATION = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*(?:s|m|h|d|w)\s*)+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w)")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

SCHEDULE_KEYS = {"sweep_every": "sweep", "recheck_every": "recheck"}
# key -> expected type ("str", "bool", "int", "strs": a list of strings, "exts": a list or a comma list)
COMMON_KEYS = {"sweep_every": "dur", "content": "bool", "archives": "bool", "ext": "exts"}
REMOTE_KEYS = {**COMMON_KEYS, "recheck_every": "dur", "endpoint": "str", "recheck_all": "bool", "headers": "bool",
               "repo_types": "strs", "author": "str", "search": "str", "filter": "strs", "repos": "strs",
               "since": "str", "min_size": "str", "max_size": "str", "concurrency": "int"}
FOLDER_KEYS = {**COMMON_KEYS, "path": "str"}
TYPE_WORDS = {"dur": 'a duration in quotes like "15m"', "str": "a string", "bool": "true or false", "int": "a whole number", "strs": "a list of strings",
              "exts": "a list of extensions"}


@dataclass
class WatchConfig:
    path: Path
    jobs: list[JobConfig]
    notes: list[str] = field(default_factory=list)  # what was accepted but has no effect (said at start)


def parse_duration(text: str) -> timedelta:
    """ "30s", "15m", "6h", "1d", "2w", or sums like "1h30m"; ValueError with the reason otherwise."""
    t = text.strip().lower()
    if not _DURATION.match(t):
        raise ValueError(f"not a duration: {text!r} (use 30s, 15m, 6h, 1d or 1h30m)")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(t))
    every = timedelta(seconds=seconds)
    if every < MIN_EVERY:
        raise ValueError(f"{text!r} is too short (at least 1s)")
    if every > MAX_EVERY:
        raise ValueError(f"{text!r} is too long (at most 366d)")
    return every


def format_duration(every: timedelta) -> str:
    s = int(every.total_seconds())
    parts = []
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= n:
            parts.append(f"{s // n}{unit}")
            s %= n
    return "".join(parts) or "0s"


class _Refuse:
    """One-line refusals that name the file and where in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, where: str, message: str) -> InvalidInput:
        return InvalidInput(f"watch config {self.path}: {where}: {message}")


def _check_type(refuse: _Refuse, where: str, key: str, value: Any, kind: str) -> Any:
    ok = {
        "str": isinstance(value, str),
        "dur": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "strs": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "exts": isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
    }[kind]
    if not ok:
        raise refuse(where, f"{key} must be {TYPE_WORDS[kind]}, not {type(value).__name__} {value!r}"[:300])
    return value


def _unknown(refuse: _Refuse, where: str, table: dict[str, Any], known: dict[str, str] | set[str]) -> None:
    extra = sorted(set(table) - set(known))
    if extra:
        raise refuse(where, f"unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def _every(refuse: _Refuse, where: str, key: str, value: Any) -> timedelta:
    if not isinstance(value, str):
        raise refuse(where, f"{key} must be a duration in quotes like \"15m\", not {value!r}"[:300])
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise refuse(where, f"{key}: {exc}") from None


def repo_types_supported(spec: Any) -> tuple[str, ...] | None:
    """The repo types a hub's sweep can be limited to, or None when this sweep does not take one
    (a hub without several types, or a mirrorwatch whose `Scope` has no `repo_type` yet)."""
    types = getattr(spec, "repo_types", None)
    if types and "repo_type" in getattr(Scope, "__annotations__", {}):
        return tuple(types)
    return None


def _hub_jobs(refuse: _Refuse, name: str, table: Any, notes: list[str]) -> list[JobConfig]:
    where = f"[hubs.{name}]"
    spec = HUBS.get(name)
    if spec is None:
        raise refuse(where, f"unknown hub {name!r} (known: {', '.join(HUBS)})")
    if not isinstance(table, dict):
        raise refuse(where, "must be a table of settings")
    known = REMOTE_KEYS if spec.kind == "remote" else FOLDER_KEYS
    if spec.kind != "remote" and "recheck_every" in table:
        raise refuse(where, f"recheck_every: a {spec.label} is rechecked by sweeping it again (use sweep_every)")
    _unknown(refuse, where, table, known)
    for key, value in table.items():
        _check_type(refuse, where, key, value, known[key])
    schedules = {kind: _every(refuse, where, key, table[key]) for key, kind in SCHEDULE_KEYS.items() if key in table}
    if not schedules:
        raise refuse(where, "nothing scheduled: give sweep_every" + (" or recheck_every" if spec.kind == "remote" else ""))

    settings: dict[str, Any] = {k: v for k, v in table.items() if k not in SCHEDULE_KEYS and k != "ext"}
    try:
        ext = table.get("ext")
        settings["extensions"] = list(parse_exts(",".join(ext) if isinstance(ext, list) else ext))
        for key in ("min_size", "max_size"):
            settings[key] = parse_size(table.get(key))
        parse_since(table.get("since"))
    except MirrorwatchError as exc:
        raise refuse(where, str(exc)) from None
    if "concurrency" in table and not 1 <= table["concurrency"] <= 64:
        raise refuse(where, f"concurrency must be from 1 to 64, not {table['concurrency']}")
    if spec.kind != "remote":
        if "path" not in table:
            raise refuse(where, "path: the folder to sweep is missing")
        folder = Path(table["path"]).expanduser()
        if not folder.is_dir():
            raise refuse(where, f"path: no such folder: {table['path']}")
        settings["path"] = str(folder.resolve())

    repo_types: list[str | None] = [None]
    if "repo_types" in table:
        wanted = table["repo_types"]
        supported = repo_types_supported(spec)
        allowed = supported or KNOWN_REPO_TYPES
        bad = [t for t in wanted if t not in allowed]
        if bad or not wanted or len(set(wanted)) != len(wanted):
            raise refuse(where, f"repo_types must list distinct types among {', '.join(allowed)}, not {wanted!r}"[:300])
        settings.pop("repo_types")
        if supported:
            repo_types = list(wanted)
        elif wanted != ["model"]:
            notes.append(f"{where} repo_types: this version of mirrorwatch sweeps {spec.label} model repos only; "
                         f"{', '.join(t for t in wanted if t != 'model')} ignored")

    jobs = []
    if "sweep" in schedules:
        for rt in repo_types:
            jobs.append(JobConfig(f"sweep {name}" + (f" {rt}" if rt and len(repo_types) > 1 else ""), "sweep",
                                  schedules["sweep"], name, {**settings, "repo_type": rt} if rt else settings))
    if "recheck" in schedules:
        jobs.append(JobConfig(f"recheck {name}", "recheck", schedules["recheck"], name, settings))
    return jobs


def _other_job(refuse: _Refuse, kind: str, table: Any) -> JobConfig:
    where = f"[jobs.{kind}]"
    job_kind = JOB_KINDS.get(kind)
    standalone = sorted(k for k, v in JOB_KINDS.items() if not v.per_hub)
    if job_kind is None or job_kind.per_hub:
        hint = (f"{kind}s are set per hub ([hubs.NAME] {kind}_every)" if job_kind is not None
                else f"unknown job kind {kind!r} (known: {', '.join(standalone) or 'none besides the hubs'})")
        raise refuse(where, hint)
    if not isinstance(table, dict):
        raise refuse(where, "must be a table of settings")
    _unknown(refuse, where, table, {"every", *job_kind.keys})
    if "every" not in table:
        raise refuse(where, "every: how often to run it is missing")
    every = _every(refuse, where, "every", table["every"])
    return JobConfig(kind, kind, every, None, {k: v for k, v in table.items() if k != "every"})


def parse_config(text: str, path: Path) -> WatchConfig:
    refuse = _Refuse(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise refuse("not valid TOML", str(exc)) from None
    _unknown(refuse, "top level", data, {"hubs", "jobs"})
    notes: list[str] = []
    jobs: list[JobConfig] = []
    for section in ("hubs", "jobs"):
        if section in data and not isinstance(data[section], dict):
            raise refuse(section, f"must be a table ([{section}.NAME] sections)")
    for name, table in data.get("hubs", {}).items():
        jobs.extend(_hub_jobs(refuse, name, table, notes))
    for kind, table in data.get("jobs", {}).items():
        jobs.append(_other_job(refuse, kind, table))
    if not jobs:
        raise refuse("nothing to watch", "add a [hubs.NAME] section with sweep_every or recheck_every")
    return WatchConfig(path, jobs, notes)


def load_config(path: str | Path) -> WatchConfig:
    """Read and check a watch config; InvalidInput (one line) for anything wrong with it."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput(f"watch config {p}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"watch config {p}: is a folder, not a file") from None
    except OSError as exc:
        raise InvalidInput(f"watch config {p}: cannot read it: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise InvalidInput(f"watch config {p}: larger than {MAX_CONFIG_BYTES:,} bytes; is it the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"watch config {p}: not UTF-8 text") from None
    return parse_config(text, p)
