"""The command line: arguments → config → logging → the command. One module per command group;
`common` holds what they share. Exit 0 ok, 1 invalid config or rules (or a tool that failed),
2 usage, 3 a daemon that stopped because it could not work."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from monitor import __version__
from monitor.cli import check, daemon, explain, init, notify, outbox, probe, rules, silence, store
from monitor.cli.common import EXIT_INVALID, EXIT_OK, Failure, started
from monitor.telemetry import logs
from monitor.text.yamldoc import SourceError, SourceErrors

__all__ = ["Failure", "main"]


def parser() -> argparse.ArgumentParser:
    """Every command and its options."""
    root = argparse.ArgumentParser(prog="callmon", description="Event-driven call-status monitor.")
    root.add_argument("--version", action="version", version=f"callmon {__version__}")
    root.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    root.add_argument("-c", "--config", help="config file (default: $CALLMON_CONFIG)")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (init, daemon, check, probe, notify, rules, silence, outbox, store, explain):
        group.add_parsers(sub)
    _debug_everywhere(root)
    return root


DEBUG_HELP = "debug logs and full tracebacks"


def _debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--debug` after any command too (`callmon run --debug`), as before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument(
                    "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
                )
                _debug_everywhere(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `callmon` console script."""
    args = parser().parse_args(argv)
    logs.configure(level="debug" if args.debug else "info")
    if args.debug:
        from monitor.telemetry.looplag import name_slow_callbacks

        name_slow_callbacks()
    if args.func is not daemon.cmd_run:
        started()  # `run` says when it is running
    try:
        return int(args.func(args))
    except SourceErrors as exc:
        for error in exc.errors:
            print(logs.redactor.redact(str(error)), file=sys.stderr)
        return EXIT_INVALID
    except SourceError as exc:
        print(logs.redactor.redact(str(exc)), file=sys.stderr)
        return EXIT_INVALID
    except Failure as exc:
        print(logs.redactor.redact(str(exc)), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        from monitor.store import StoreError

        if isinstance(exc, StoreError):  # one sentence that names the store
            print(logs.redactor.redact(str(exc)), file=sys.stderr)
            return EXIT_INVALID
        if args.debug:
            traceback.print_exc()
        print(f"callmon: {type(exc).__name__}: {logs.redactor.redact(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
