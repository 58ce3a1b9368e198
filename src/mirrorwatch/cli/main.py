"""Entry point of the `mirrorwatch` console script."""

from __future__ import annotations

import importlib
import os
import sys

# mirrorwatch's numpy work is many small matrix products (fingerprints): one BLAS thread per worker
# is several times faster than BLAS threads fighting the sweep's own threads for two cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


# Each module registers its commands on the app when imported.
COMMAND_MODULES = [
    "hash_cmds",
    "bank_cmds",
    "exchange_cmds",
    "lookup_cmds",
    "scan_cmds",
    "match_cmds",
    "report_cmds",
    "user_cmds",
    "serve_cmds",
    "demo_cmds",
    "watch_cmds",
    "notify_cmds",
]


# Commands that need no database: loading only their module keeps start-up short (no SQLAlchemy).
LIGHT_COMMANDS = {"hash": "hash_cmds", "inspect": "hash_cmds"}


def _command_word(argv: list[str]) -> str | None:
    args = iter(argv)
    for a in args:
        if a == "--db":
            next(args, None)
        elif not a.startswith("-"):
            return a
    return None


def _fast_path(argv: list[str]) -> None:
    """`hash --json|--csv PATH...` to a pipe or file runs without Typer and Rich (cli/hash_core.py):
    storage scans call it once per object, and Typer's start-up would be a quarter of a 1 GiB file's
    hashing time. Anything else (help, usage errors, the table) goes the ordinary way."""
    from .hash_core import fast_hash, fast_hash_args

    args = fast_hash_args(argv)
    if args is None:
        return
    try:
        code = fast_hash(*args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # a bug: one line, as below, unless debugging
        if os.environ.get("MIRRORWATCH_DEBUG"):
            raise
        from mirrorwatch.display import safe_text

        print(f"internal error: {type(exc).__name__}: {safe_text(str(exc))} "
              "(set MIRRORWATCH_DEBUG=1 for a traceback)", file=sys.stderr)
        code = 70
    sys.exit(code)


def _load_commands(argv: list[str] | None = None) -> None:
    word = _command_word(argv if argv is not None else sys.argv[1:])
    modules = [LIGHT_COMMANDS[word]] if word in LIGHT_COMMANDS else COMMAND_MODULES
    for name in modules:
        try:
            importlib.import_module(f"mirrorwatch.cli.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name != f"mirrorwatch.cli.{name}":
                raise


def main() -> None:
    _fast_path(sys.argv[1:])
    from mirrorwatch.errors import MirrorwatchError

    from .app import app, err_console
    from .output import term

    _load_commands()
    try:
        app()
    except MirrorwatchError as exc:
        err_console.print(f"[bold red]error:[/] {term(exc)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: say so in one line unless debugging
        if os.environ.get("MIRRORWATCH_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {term(exc)} (set MIRRORWATCH_DEBUG=1 for a traceback)",
            highlight=False,
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
