"""The command line: arguments → config → logging → run. Exit 0 ok, 1 invalid config, 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import structlog

from monitor import __version__, logs, tools, yamldoc
from monitor import config as config_mod
from monitor.config import Config
from monitor.yamldoc import SourceError, SourceErrors

log = structlog.get_logger("monitor.cli")

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class Failure(Exception):
    """A one-sentence reason to exit 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callmon", description="Event-driven call-status monitor."
    )
    parser.add_argument("--version", action="version", version=f"callmon {__version__}")
    parser.add_argument("--debug", action="store_true", help="debug logs and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", help="config file (default: $CALLMON_CONFIG)")

    run = sub.add_parser("run", help="run the daemon")
    with_config(run)
    run.add_argument("--record", metavar="FILE.jsonl", help="also append every event to FILE")
    check = sub.add_parser("check", help="validate the config and every rule file")
    with_config(check)
    demo = sub.add_parser("demo", help="run the daemon against the built-in simulator")
    demo.add_argument("--listen", default="127.0.0.1:9464", help="metrics address")
    demo.add_argument("--seed", type=int, default=None, help="traffic generator seed")
    simulate = sub.add_parser("simulate", help="serve the built-in simulator of all four APIs")
    simulate.add_argument("--listen", default="127.0.0.1:8080", help="address to serve on")
    simulate.add_argument("--seed", type=int, default=None, help="traffic generator seed")
    simulate.add_argument(
        "--history", type=int, default=50, help="finished calls per API before traffic starts"
    )
    tools.add_parsers(sub, with_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `callmon` console script."""
    args = _parser().parse_args(argv)
    logs.configure(level="debug" if args.debug else "info")
    try:
        if args.command == "check":
            return cmd_check(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "simulate":
            return cmd_simulate(args)
        return int(args.func(args))
    except SourceErrors as exc:
        for error in exc.errors:
            print(logs.redactor.redact(str(error)), file=sys.stderr)
        return EXIT_INVALID
    except (SourceError, Failure) as exc:
        print(logs.redactor.redact(str(exc)), file=sys.stderr)
        return EXIT_INVALID
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
    return EXIT_USAGE


def config_path(arg: str | None) -> Path:
    """The config file from `-c`, else `$CALLMON_CONFIG`, else ./callmon.yaml."""
    chosen = arg or os.environ.get("CALLMON_CONFIG") or "callmon.yaml"
    path = Path(chosen)
    if not path.exists():
        raise Failure(f"{chosen}: config file not found (pass -c FILE or set CALLMON_CONFIG)")
    return path


def load(arg: str | None) -> Config:
    """Load and validate the config and its notifier URLs; register secrets for redaction."""
    from monitor.notify.sender import check_url

    path = config_path(arg)
    doc = yamldoc.load(path)
    config = config_mod.from_document(doc, path.parent)
    logs.redactor.update(config.secrets())
    errors = []
    for name, notifier in config.notifiers.items():
        for i, url in enumerate(notifier.urls):
            problem = check_url(url.get_secret_value())
            if problem:
                errors.append(
                    doc.error(
                        ("notifiers", name, "urls", i), f"notifiers.{name}.urls[{i}]: {problem}"
                    )
                )
    if errors:
        raise SourceErrors(errors)
    return config


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.app import load_config_rules
    from monitor.rules.checks import never_matching

    config = load(args.config)
    rules = load_config_rules(config)
    providers = {p.name: p.type for p in config.providers}
    warnings = list(never_matching(rules, providers))
    for never in warnings:
        rule = never.rule
        print(
            f"{rule.source}:{rule.line}:{rule.col}: warning: rule {rule.name!r} can never "
            f"match: {never.reason}",
            file=sys.stderr,
        )
    print(
        f"ok: {len(config.providers)} providers, {len(config.notifiers)} notifiers, "
        f"{len(rules)} rules" + (f", {len(warnings)} warnings" if warnings else "")
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.app import Daemon, install_signals, load_config_rules

    config = load(args.config)
    rules = load_config_rules(config)

    async def main() -> int:
        daemon = Daemon(config, rules, record=args.record)
        install_signals(daemon)
        await _start(daemon)
        return daemon.exit_code

    return asyncio.run(main())


async def _start(daemon: object) -> None:
    from monitor.app import Daemon
    from monitor.store import StoreError

    assert isinstance(daemon, Daemon)
    try:
        await daemon.run()
    except OSError as exc:
        raise Failure(f"cannot listen on {daemon.config.listen}: {exc.strerror or exc}") from None
    except StoreError as exc:
        raise Failure(str(exc)) from None


def demo_rules() -> Path:
    """The example rules: ./rules when present, else the ones beside the package source."""
    candidates = (
        Path("rules"),
        Path(__file__).resolve().parent.parent / "rules",  # a source checkout
        Path("/etc/callmon/rules"),  # the container image
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise Failure("cannot find the example rules folder (rules/)")


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.app import Daemon, install_signals, load_config_rules
    from monitor.simulator.server import Simulator

    async def main() -> None:
        sim = Simulator(seed=args.seed)
        await sim.start(traffic=True, history=40)
        with tempfile.TemporaryDirectory(prefix="callmon-demo-") as tmp:
            config = Config.model_validate(
                {
                    "store": f"sqlite:///{tmp}/demo.db",
                    "listen": args.listen,
                    "rules": [str(demo_rules())],
                    "providers": sim.provider_configs(poll_interval="1s"),
                    "notifiers": {"ops-chat": {"urls": ["console://"]}},
                }
            )
            rules = load_config_rules(config)
            daemon = Daemon(config, rules)
            install_signals(daemon)
            print(
                f"callmon demo: four simulated call APIs at {sim.base_url}, "
                f"metrics at http://{args.listen}/metrics; alerts print below. Ctrl-C stops.",
                flush=True,
            )
            try:
                await _start(daemon)
            finally:
                await sim.stop()

    asyncio.run(main())
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from monitor.simulator.server import Simulator

    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        print(f"callmon simulate: --listen must be HOST:PORT, not {args.listen!r}", file=sys.stderr)
        return EXIT_USAGE

    async def main() -> None:
        sim = Simulator(host=host.strip("[]") or "127.0.0.1", port=int(port), seed=args.seed)
        try:
            await sim.start(traffic=True, history=args.history)
        except OSError as exc:
            raise Failure(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
        print(f"# callmon simulator: four call APIs at {sim.base_url} (Ctrl-C stops)")
        print("# a config that points callmon at it:")
        print(sim.config_yaml(), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await sim.stop()

    asyncio.run(main())
    return EXIT_OK
