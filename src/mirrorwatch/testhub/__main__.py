"""Run a generated test hub in the foreground: `python -m mirrorwatch.testhub --repos 200 --seed 1`.

Prints the API URL (what to pass as HF_ENDPOINT or HfApi(endpoint=...)) and serves until Ctrl-C or
SIGTERM. `--plant REPO_ID=LOCAL_FILE[:PATH_IN_REPO]` puts a real local file into a repo (the demo
plants removed models this way); `--url-file` writes the URL for scripts that start the hub.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .faults import Faults
from .generate import generate_repos
from .model import Hub, RepoFile
from .ratelimit import Quotas
from .server import serve


def _parse_plants(values: list[str]) -> dict[str, list[RepoFile]]:
    planted: dict[str, list[RepoFile]] = {}
    for value in values:
        repo_id, sep, spec = value.partition("=")
        if not sep or "/" not in repo_id or not spec:
            raise SystemExit(f"--plant expects REPO_ID=LOCAL_FILE[:PATH_IN_REPO], got {value!r}")
        local, _, in_repo = spec.partition(":")
        path = Path(local)
        if not path.is_file():
            raise SystemExit(f"--plant: no such file {local!r}")
        planted.setdefault(repo_id, []).append(RepoFile.from_path(path, in_repo or None))
    return planted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mirrorwatch.testhub",
                                description="Serve a synthetic Hugging Face Hub on 127.0.0.1 (no internet).")
    p.add_argument("--repos", type=int, default=200, help="number of generated repos (default 200)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    p.add_argument("--weight-fraction", type=float, default=0.6)
    p.add_argument("--api-quota", type=int, default=None, help="API requests per window (default: unlimited)")
    p.add_argument("--resolvers-quota", type=int, default=None, help="resolver requests per window")
    p.add_argument("--window-s", type=float, default=300.0, help="rate-limit window in seconds")
    p.add_argument("--filler", action="store_true", help="serve filler bytes for declared-only files")
    p.add_argument("--plant", action="append", default=[], metavar="REPO_ID=FILE[:PATH]",
                   help="put a local file into a repo (repeatable)")
    p.add_argument("--url-file", type=Path, default=None, help="write the API URL to this file once serving")
    args = p.parse_args(argv)
    if args.repos < 0:
        p.error("--repos must be >= 0")

    repos = generate_repos(args.repos, seed=args.seed, weight_fraction=args.weight_fraction,
                           planted=_parse_plants(args.plant) or None)
    quotas = None
    if args.api_quota is not None or args.resolvers_quota is not None:
        quotas = Quotas(api=args.api_quota if args.api_quota is not None else 10**9,
                        resolvers=args.resolvers_quota if args.resolvers_quota is not None else 10**9,
                        window_s=args.window_s)
    faults = Faults(latency_s=args.latency_ms / 1000.0) if args.latency_ms > 0 else None
    try:
        running = serve(Hub(repos, serve_filler=args.filler), port=args.port, faults=faults, quotas=quotas)
    except OSError as e:
        print(f"error: cannot listen on port {args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"mirrorwatch test hub: {len(repos)} repos (seed {args.seed}) at {running.url}", flush=True)
    print(f"  CDN origin: {running.cdn_url}", flush=True)
    print(f"  use: HF_ENDPOINT={running.url}  (Ctrl-C to stop)", flush=True)
    if args.url_file:
        args.url_file.write_text(running.url + "\n")
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
