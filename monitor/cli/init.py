"""`callmon init [--provider TYPE]`: a commented starter config and a rule file for one provider,
which `callmon check` accepts once the environment variables it names are set."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from monitor.cli.common import EXIT_OK, Failure, Subparsers, with_config

HEADER = """\
# callmon's configuration, written by `callmon init --provider {type}`.
# Set the environment variables named below (${{…}}), then: callmon probe (are the
# credentials right?), callmon notify test ops-chat (does the chat get messages?), callmon run.
# Every key is explained in README.md ("Configuration"); unknown keys are errors.

store: sqlite:///callmon-state.db     # relative to this file; postgresql://… for replicas
listen: 127.0.0.1:9464                # /metrics /healthz /readyz, the status page, the API
timezone: UTC                         # how alert texts show times (| localtime)
# external_url: https://callmon.example.net   # where people reach the page: links in messages
rules: [./rules]                      # rule files or folders, relative to this file

providers:
"""

NOTIFIERS = """
notifiers:
  ops-chat:                           # rules name it in notify: [ops-chat]
    urls: ["${ALERT_URL}"]            # apprise URLs: slack://…, tgram://…, mailto://…
    # urls_file: /run/secrets/alert-urls   # or one URL per line in a file
"""

RULE = """\
# A rule file written by `callmon init`: README.md ("Rule files") tells every key.
rules:
  - name: missed-call
    when: {provider_type: TYPE, to: [missed, rejected, failed]}
    notify: [ops-chat]
    severity: warning
    title: "{{ to | capitalize }} call from {{ call.from | mask_number }}"
    body: "At {{ call.created_at | localtime }}, on {{ provider }}."
"""
"""The rule file `callmon init` writes for a provider that declares none of its own."""


def add_parsers(sub: Subparsers) -> None:
    init = sub.add_parser("init", help="write a starter config and rule file for one provider")
    from monitor.sources import PLUGINS

    init.add_argument(
        "--provider",
        choices=sorted(kind for kind, plugin in PLUGINS.items() if plugin.starter),
        default="vms-intercom",
        help="the provider type to start with (default: vms-intercom)",
    )
    with_config(init)
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    config = Path(args.config or "callmon.yaml")
    rules = config.parent / "rules" / "missed-calls.yaml"
    for path in (config, rules):
        if path.exists():
            raise Failure(f"{path}: exists already; callmon init overwrites nothing")
    from monitor.sources import PLUGINS

    plugin = PLUGINS[args.provider]
    text = HEADER.format(type=args.provider) + plugin.starter + NOTIFIERS
    rules.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    rules.write_text(plugin.starter_rule or RULE.replace("TYPE", args.provider))
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    names = ", ".join(dict.fromkeys(re.findall(r"\$\{([A-Z_]+)\}", code)))
    print(f"wrote {config} and {rules}")
    print(f"next: set {names}; then run")
    steps = [
        (f"callmon probe -c {config}", "do the credentials work? which calls are read?"),
        (f"callmon notify test ops-chat -c {config}", "does the chat get a message?"),
        (f"callmon run -c {config}", "monitor"),
    ]
    width = max(len(command) for command, _ in steps)
    for command, why in steps:
        print(f"  {command:<{width}}  # {why}")
    return EXIT_OK
