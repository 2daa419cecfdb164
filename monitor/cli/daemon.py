"""`callmon run`, `callmon demo` and `callmon simulate`: the daemon, and the simulator."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    Subparsers,
    load_checking_urls_later,
    started,
    with_config,
)
from monitor.text.yamldoc import SourceError, SourceErrors


def add_parsers(sub: Subparsers) -> None:
    run = sub.add_parser("run", help="run the daemon")
    with_config(run)
    run.add_argument("--record", metavar="FILE.jsonl", help="also append every event to FILE")
    run.set_defaults(func=cmd_run)
    demo = sub.add_parser("demo", help="run the daemon against the built-in simulator")
    demo.add_argument("--listen", default="127.0.0.1:9464", help="metrics address")
    demo.add_argument("--seed", type=int, default=None, help="traffic generator seed")
    demo.set_defaults(func=cmd_demo)
    simulate = sub.add_parser("simulate", help="serve the built-in simulator of all four APIs")
    simulate.add_argument("--listen", default="127.0.0.1:8080", help="address to serve on")
    simulate.add_argument("--seed", type=int, default=None, help="traffic generator seed")
    simulate.add_argument(
        "--history", type=int, default=50, help="finished calls per API before traffic starts"
    )
    simulate.set_defaults(func=cmd_simulate)


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.runtime.build import load_config_rules
    from monitor.runtime.daemon import Daemon, install_signals

    config, check_urls = load_checking_urls_later(args.config)
    rules = load_config_rules(config)

    async def main() -> int:
        daemon = Daemon(config, rules, record=args.record, check=check_urls, settle=True)
        install_signals(daemon)
        return await _start(daemon, on_ready=started)

    return asyncio.run(main())


async def _start(daemon: object, on_ready: Callable[[], None] | None = None) -> int:
    """Run the daemon to its end; its exit code, or a `Failure` saying why it could not start.
    Its last log line, `stopped`, names the code the process exits with."""
    import structlog

    from monitor.runtime.daemon import EXIT_UNHEALTHY, Daemon
    from monitor.store import StoreError

    assert isinstance(daemon, Daemon)
    log = structlog.get_logger("monitor.runtime.daemon")
    code = EXIT_INVALID
    try:
        await daemon.run(on_ready=on_ready)
        code = daemon.exit_code
    except OSError as exc:
        raise Failure(f"cannot listen on {daemon.config.listen}: {exc.strerror or exc}") from None
    except StoreError as exc:
        raise Failure(str(exc)) from None
    except (SourceErrors, SourceError):
        raise  # the config's notifier URLs, checked once running: exit 1, each at its line
    except Exception as exc:  # whatever escaped: the daemon could not work, and says why
        code = EXIT_UNHEALTHY
        log.critical("callmon stopped on an unexpected error", exc_info=True)
        raise Failure(f"callmon stopped: {_innermost(exc)}", code=code) from None
    finally:
        log.info("stopped", exit_code=code)
    return code


def _innermost(exc: BaseException) -> str:
    """One sentence for an error, reaching into exception groups for the first real one."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def demo_rules() -> Path:
    """The example rules: ./rules when present, else the ones beside the package source."""
    candidates = (
        Path("rules"),
        Path(__file__).resolve().parent.parent.parent / "rules",  # a source checkout
        Path("/etc/callmon/rules"),  # the container image
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise Failure("cannot find the example rules folder (rules/)")


def demo_providers(sim: Any, listen: str) -> list[dict[str, Any]]:
    """The simulator's four APIs: the VMS and CINNOX polled every second; Bird and Bandwidth
    pushing each change to callmon (signed, and with Basic credentials, with secrets made up for
    this run), polled only every 30 s as the safety net."""
    host, _, port = listen.rpartition(":")
    local = f"127.0.0.1:{port}" if host in ("", "0.0.0.0", "[::]") else listen
    key, password = secrets.token_hex(16), secrets.token_hex(16)
    public = f"http://{local}/hooks/support"
    sim.bird.subscribe(public, key, public)
    sim.bandwidth.subscribe(f"http://callmon:{password}@{local}/hooks/sales")
    found: list[dict[str, Any]] = sim.provider_configs(poll_interval="1s")
    for provider in found:
        if provider["name"] == "support":
            provider.update(poll_interval="30s", webhook={"signing_key": key, "url": public})
        elif provider["name"] == "sales":
            webhook = {"username": "callmon", "password": password}
            provider.update(poll_interval="30s", webhook=webhook)
    return found


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.config import Config
    from monitor.runtime.build import load_config_rules
    from monitor.runtime.daemon import Daemon, install_signals
    from monitor.simulator.server import Simulator

    async def main() -> None:
        sim = Simulator(seed=args.seed)
        await sim.start(history=40)  # the traffic starts once callmon runs: see below
        with tempfile.TemporaryDirectory(prefix="callmon-demo-") as tmp:
            config = Config.model_validate(
                {
                    "store": f"sqlite:///{tmp}/demo.db",
                    "listen": args.listen,
                    "external_url": f"http://{args.listen}",
                    "rules": [str(demo_rules())],
                    "providers": demo_providers(sim, args.listen),
                    "notifiers": {"ops-chat": {"urls": ["console://"]}},
                }
            )
            rules = load_config_rules(config)
            daemon = Daemon(config, rules, settle=True)
            install_signals(daemon)
            print(
                f"callmon demo: four simulated call APIs at {sim.base_url}, "
                f"metrics at http://{args.listen}/metrics; alerts print below. Ctrl-C stops.",
                flush=True,
            )
            try:
                # Calls begin once callmon is running (its first polls are the baseline), the
                # first a missed call: an alert prints within seconds.
                await _start(daemon, on_ready=sim.start_traffic)
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
        print("# a config for callmon run -c FILE: every API, the example rules, alerts printed")
        print(sim.config_yaml(rules=[str(demo_rules().resolve())]), end="")
        print("# end of config", flush=True)
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
