"""Config loading: validation, positions in errors, interpolation, secret files."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import file as configfile
from monitor.text import units
from monitor.text.yamldoc import SourceError, SourceErrors

GOOD = """\
store: sqlite:////var/lib/callmon/state.db
listen: 0.0.0.0:9464
timezone: Europe/Berlin
rules: [./rules]
providers:
  - name: front-door
    type: vms-intercom
    base_url: https://vms.example.net
    token: ${VMS_TOKEN}
    client: web
    device_id: callmon
    intercoms: [158, 180]
    poll_interval: 5s
notifiers:
  ops-chat:
    urls: ["json://localhost/${HOOK:-hook}"]
schedules:
  night: {from: "22:00", to: "07:00", timezone: Asia/Yekaterinburg}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callmon.yaml"
    path.write_text(text)
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SourceErrors) as info:
        configfile.load(path, env or {})
    return [str(e) for e in info.value.errors]


def test_a_full_config_loads_into_frozen_settings(tmp_path: Path) -> None:
    cfg = configfile.load(write(tmp_path, GOOD), {"VMS_TOKEN": "abc123"})
    provider = cfg.providers[0]
    assert provider.token.get_secret_value() == "abc123"
    assert provider.intercoms == (158, 180)
    assert provider.poll_interval == 5.0
    assert cfg.notifiers["ops-chat"].urls[0].get_secret_value() == "json://localhost/hook"
    assert cfg.rule_paths() == [tmp_path / "rules"]
    assert {"abc123", "json://localhost/hook"} <= cfg.secrets()  # and their encodings
    assert "YWJjMTIz" in cfg.secrets()  # base64 of the token
    with pytest.raises(ValueError, match="frozen"):
        cfg.listen = "x"  # type: ignore[misc]


def test_defaults_apply_to_an_empty_file(tmp_path: Path) -> None:
    cfg = configfile.load(write(tmp_path, ""), {})
    assert cfg.store == f"sqlite:///{tmp_path / 'callmon-state.db'}"  # beside the config
    assert cfg.listen_address() == ("0.0.0.0", 9464)
    assert cfg.providers == ()


def test_an_unknown_key_is_an_error_at_its_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    client: web", "    clinet: web"))
    assert errors_of(path, {"VMS_TOKEN": "x"}) == [
        f"{path}:10:5: unknown key 'clinet' in providers[0]"
    ]


def test_a_missing_environment_variable_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert errors_of(path) == [f"{path}:9:12: environment variable VMS_TOKEN is not set"]


def test_a_bad_duration_says_how_to_write_one(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("poll_interval: 5s", "poll_interval: 5 minutes"))
    (message,) = errors_of(path, {"VMS_TOKEN": "x"})
    assert message.startswith(f"{path}:13:20: providers[0].poll_interval: invalid duration")


def test_an_unknown_provider_type_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("type: vms-intercom", "type: vms"))
    (message,) = errors_of(path, {"VMS_TOKEN": "x"})
    assert message.startswith(f"{path}:7:11: providers[0].type: unknown type 'vms'")


def test_a_missing_required_key_points_at_its_parent(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    base_url: https://vms.example.net\n", ""))
    assert errors_of(path, {"VMS_TOKEN": "x"}) == [
        f"{path}:6:5: providers[0].base_url: required key is missing"
    ]


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "vms-token").write_text("from-file\n")
    text = GOOD.replace("token: ${VMS_TOKEN}", "token_file: vms-token")
    cfg = configfile.load(write(tmp_path, text), {})
    assert cfg.providers[0].token.get_secret_value() == "from-file"


def test_relative_paths_are_relative_to_the_config_not_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 5 of #10: a relative store or CA bundle followed the current directory."""
    site = tmp_path / "etc"
    site.mkdir()
    (site / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = GOOD.replace("sqlite:////var/lib/callmon/state.db", "sqlite:///state.db").replace(
        "poll_interval: 5s", "poll_interval: 5s\n    verify_tls: ca.pem"
    )
    path = write(site, text)
    monkeypatch.chdir(tmp_path)
    cfg = configfile.load(path, {"VMS_TOKEN": "x"})
    assert cfg.store == f"sqlite:///{site / 'state.db'}"
    assert cfg.providers[0].verify_tls == str(site / "ca.pem")


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        (None, "state/callmon-state.db"),  # the default
        ("sqlite:///calls.db", "state/calls.db"),
        ("sqlite:///sub/calls.db", "state/sub/calls.db"),
        ("sqlite:////abs/calls.db", "/abs/calls.db"),  # an absolute path stays
    ],
)
def test_callmon_state_dir_holds_a_relative_sqlite_store(
    tmp_path: Path, store: str | None, expected: str
) -> None:
    """#22: in the container the config is mounted read-only; its relative store lives on the
    state volume that CALLMON_STATE_DIR names, and nothing else moves."""
    (tmp_path / "etc").mkdir()
    text = f"store: {store}\n" if store else ""
    path = write(tmp_path / "etc", text + "rules: [./rules]\n")
    cfg = configfile.load(path, {"CALLMON_STATE_DIR": str(tmp_path / "state")})
    want = expected if expected.startswith("/") else str(tmp_path / expected)
    assert cfg.store == f"sqlite:///{want}"
    assert cfg.rule_paths() == [tmp_path / "etc" / "rules"]  # still beside the config


def test_an_empty_callmon_state_dir_changes_nothing(tmp_path: Path) -> None:
    cfg = configfile.load(write(tmp_path, ""), {"CALLMON_STATE_DIR": ""})
    assert cfg.store == f"sqlite:///{tmp_path / 'callmon-state.db'}"


def test_notifier_urls_can_come_from_a_file(tmp_path: Path) -> None:
    """`urls_file`: one URL per line, blank lines and comments skipped; the URLs are secrets."""
    (tmp_path / "urls").write_text("# the team's rooms\njson://localhost/a\n\n  json://h/b  \n")
    text = GOOD.replace('urls: ["json://localhost/${HOOK:-hook}"]', "urls_file: urls")
    cfg = configfile.load(write(tmp_path, text), {"VMS_TOKEN": "x"})
    urls = [u.get_secret_value() for u in cfg.notifiers["ops-chat"].urls]
    assert urls == ["json://localhost/a", "json://h/b"]
    assert "json://h/b" in set(cfg.secrets())


@pytest.mark.parametrize(
    ("setting", "content", "at", "problem"),
    [
        ("urls_file: urls", "# nothing\n", "16:16", "holds no URL (one per line)"),
        ("urls_file: missing", None, "16:16", "cannot read urls_file"),
        ('urls_file: urls\n    urls: ["json://x/"]', "json://y/\n", "16:5", "give either urls"),
    ],
)
def test_a_urls_file_that_cannot_be_used_is_a_positioned_error(
    tmp_path: Path, setting: str, content: str | None, at: str, problem: str
) -> None:
    if content is not None:
        (tmp_path / "urls").write_text(content)
    path = write(tmp_path, GOOD.replace('urls: ["json://localhost/${HOOK:-hook}"]', setting))
    (error,) = errors_of(path, {"VMS_TOKEN": "x"})
    assert error.startswith(f"{path}:{at}: ")
    assert problem in error


def test_token_and_token_file_together_are_an_error(tmp_path: Path) -> None:
    text = GOOD.replace("token: ${VMS_TOKEN}", "token: x\n    token_file: nope")
    path = write(tmp_path, text)
    assert errors_of(path) == [f"{path}:10:5: give either token or token_file, not both"]


def test_duplicate_provider_names_are_an_error(tmp_path: Path) -> None:
    extra = "  - {name: front-door, type: vms-intercom, base_url: 'http://x', token: t}\nnotifiers:"
    path = write(tmp_path, GOOD.replace("notifiers:", extra, 1))
    (message,) = errors_of(path, {"VMS_TOKEN": "x"})
    assert message == f"{path}:14:12: duplicate provider name 'front-door'"


def test_an_unknown_timezone_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("Europe/Berlin", "Mars/Olympus"))
    (message,) = errors_of(path, {"VMS_TOKEN": "x"})
    assert message.startswith(f"{path}:3:11: timezone: unknown timezone 'Mars/Olympus'")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5.0), ("10m", 600.0), ("1h", 3600.0), (2, 2.0), ("1.5s", 1.5)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0s", "-1s", "5 minutes", "", True])
def test_invalid_durations(text: str | bool) -> None:
    with pytest.raises(ValueError, match="duration"):
        units.parse_duration(text)


def test_the_replicas_deployment_is_a_valid_config_and_compose_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy/docker-compose.replicas.yml runs two replicas of `callmon run` with
    deploy/callmon-replicas.yaml beside the simulator: the config passes `callmon check` (its
    rules folder, which the image holds, pointed at the repository's), and every command the
    compose file gives is one callmon accepts."""
    from ruamel.yaml import YAML

    from monitor.cli import main, parser

    deploy = Path(__file__).parent.parent / "deploy"
    config = (deploy / "callmon-replicas.yaml").read_text()
    rules = Path(__file__).parent.parent / "rules"
    (tmp_path / "callmon.yaml").write_text(config.replace("/etc/callmon/rules", str(rules)))
    monkeypatch.setenv("PGPASSWORD", "callmon")
    assert main(["check", "-c", str(tmp_path / "callmon.yaml")]) == 0
    assert capsys.readouterr().out.startswith("ok: 4 providers, 1 notifiers")

    compose = YAML(typ="safe").load((deploy / "docker-compose.replicas.yml").read_text())
    services = compose["services"]
    for name in ("callmon-a", "callmon-b"):
        assert services[name]["command"] == ["run"]
        assert "./callmon-replicas.yaml:/etc/callmon/callmon.yaml:ro" in services[name]["volumes"]
        assert services[name]["environment"] == {"PGPASSWORD": "callmon"}
    for service in services.values():
        if "command" in service and "image" not in service:
            parser().parse_args(service["command"])  # exits on a command callmon refuses


def test_the_api_token_may_come_from_a_file_and_is_a_secret(tmp_path: Path) -> None:
    (tmp_path / "api-token").write_text("0123456789abcdef-token\n")
    config = configfile.load(write(tmp_path, "api_token_file: api-token\n"), {})
    assert config.api_token is not None
    assert config.api_token.get_secret_value() == "0123456789abcdef-token"
    assert "0123456789abcdef-token" in config.secrets()
    (error,) = errors_of(write(tmp_path, "api_token: short\n"))
    assert error.endswith(
        "callmon.yaml:1:12: api_token: at least 16 characters (it guards changes through the API)"
    )


def test_the_store_url_can_come_from_a_file(tmp_path: Path) -> None:
    """A PostgreSQL URL holds its password: `store_file` keeps it out of the config, and the
    password is a secret like any other."""
    (tmp_path / "store-url").write_text("postgresql://callmon:s3cret-pw@db.example.net/callmon\n")
    text = GOOD.replace("store: sqlite:////var/lib/callmon/state.db", "store_file: store-url")
    cfg = configfile.load(write(tmp_path, text), {"VMS_TOKEN": "x"})
    assert cfg.store == "postgresql://callmon:s3cret-pw@db.example.net/callmon"
    assert "s3cret-pw" in set(cfg.secrets())


def test_a_fleet_s_config_may_pass_a_rule_file_s_size_and_a_bound_still_holds(
    tmp_path: Path,
) -> None:
    """A config of 10,000 accounts is about 1.5 MiB: past the 1 MiB of a rule file (P5 at
    10,000 accounts was refused at start with `file is larger than 1024 KiB`)."""
    accounts = "".join(
        f"  - {{name: acct-{i}, type: vms-intercom, base_url: 'http://127.0.0.1:1/a/{i}',"
        f" token: acct-{i}, poll_interval: 5s}}  # {'account of the fleet ' * 20}\n"
        for i in range(2_500)
    )
    path = write(tmp_path, "providers:\n" + accounts)
    assert path.stat().st_size > 1024 * 1024
    assert len(configfile.load(path, {}).providers) == 2_500
    path.write_text("# " + "x" * configfile.MAX_BYTES + "\n")
    with pytest.raises(SourceError) as info:
        configfile.load(path, {})
    assert str(info.value) == f"{path}:1:1: file is larger than 16384 KiB"
