"""`callmon init [--provider TYPE]`: a commented starter config and a rule file for one provider,
which `callmon check` accepts once the environment variables it names are set."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from monitor.cli.common import EXIT_OK, Failure, Subparsers, with_config

HEADER = """\
# callmon's configuration, written by `callmon init --provider {type}`.
# Set the environment variables named below (${{…}}), then: callmon check, callmon run.
# Every key is explained in README.md ("Configuration"); unknown keys are errors.

store: sqlite:///callmon-state.db     # relative to this file; postgresql://… for replicas
listen: 127.0.0.1:9464                # /metrics /healthz /readyz, the status page, the API
timezone: UTC                         # how alert texts show times (| localtime)
rules: [./rules]                      # rule files or folders, relative to this file

providers:
"""

PROVIDERS = {
    "vms-intercom": """\
  - name: front-door                  # your name for it: in rules, alerts and metric labels
    type: vms-intercom
    base_url: ${VMS_BASE_URL}         # the VMS root, such as https://vms.example.net
    token: ${VMS_TOKEN}               # or token_file: /run/secrets/vms-token
    # login: callmon                  # instead of a token: a login and a password
    # password: ${VMS_PASSWORD}
    # intercoms: [158, 180]           # only these doors (default: every door seen in calls)
    poll_interval: 5s
""",
    "bird": """\
  - name: support                     # your name for it: in rules, alerts and metric labels
    type: bird
    base_url: https://api.bird.com
    token: ${BIRD_ACCESS_KEY}         # or token_file: /run/secrets/bird-key
    workspace_id: ${BIRD_WORKSPACE_ID}
    channel_id: ${BIRD_CHANNEL_ID}
    poll_interval: 5s                 # with a webhook (README "Push"), 60s is enough
""",
    "cinnox": """\
  - name: contact-centre              # your name for it: in rules, alerts and metric labels
    type: cinnox
    base_url: ${CINNOX_BASE_URL}      # your CINNOX API host, such as https://example.cinnox.com
    app_id: ${CINNOX_APP_ID}
    token: ${CINNOX_TOKEN}            # or token_file: /run/secrets/cinnox-token
    poll_interval: 10s                # CINNOX lists only finished calls
""",
    "bandwidth": """\
  - name: sales                       # your name for it: in rules, alerts and metric labels
    type: bandwidth
    base_url: https://api.catapult.inetwork.com
    user_id: ${BANDWIDTH_USER_ID}
    api_token: ${BANDWIDTH_API_TOKEN} # or api_token_file: /run/secrets/bandwidth-token
    api_secret: ${BANDWIDTH_API_SECRET}
    poll_interval: 5s
""",
}

NOTIFIERS = """
notifiers:
  ops-chat:                           # rules name it in notify: [ops-chat]
    urls: ["${ALERT_URL}"]            # apprise URLs: slack://…, tgram://…, mailto://…
    # urls_file: /run/secrets/alert-urls   # or one URL per line in a file
"""

RULES = {
    "vms-intercom": """\
# A rule file written by `callmon init`: README.md ("Rule files") tells every key.
rules:
  - name: missed-intercom-call
    when: {provider_type: vms-intercom, to: missed}
    notify: [ops-chat]
    severity: warning
    title: "Missed call at {{ call.intercom.title }}"
    body: "Rang {{ call.ring_seconds | duration }} at {{ call.created_at | localtime }}."
""",
    "phone": """\
# A rule file written by `callmon init`: README.md ("Rule files") tells every key.
rules:
  - name: missed-call
    when: {provider_type: TYPE, to: [missed, rejected, failed]}
    notify: [ops-chat]
    severity: warning
    title: "{{ to | capitalize }} call from {{ call.from | mask_number }}"
    body: "At {{ call.created_at | localtime }}, on {{ provider }}."
""",
}


def add_parsers(sub: Subparsers) -> None:
    init = sub.add_parser("init", help="write a starter config and rule file for one provider")
    init.add_argument(
        "--provider",
        choices=sorted(PROVIDERS),
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
    text = HEADER.format(type=args.provider) + PROVIDERS[args.provider] + NOTIFIERS
    kind = "vms-intercom" if args.provider == "vms-intercom" else "phone"
    rules.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    rules.write_text(RULES[kind].replace("TYPE", args.provider))
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    names = ", ".join(dict.fromkeys(re.findall(r"\$\{([A-Z_]+)\}", code)))
    print(f"wrote {config} and {rules}")
    print(f"next: set {names}; then callmon check -c {config} and callmon run -c {config}")
    return EXIT_OK
