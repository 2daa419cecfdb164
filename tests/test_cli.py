"""The command line as a user runs it: exit codes, one-line errors, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def callmon(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if k != "CALLMON_CONFIG"}
    full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=60,
    )


def write_config(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "missed.yaml").write_text(
        "rules:\n  - {name: missed, when: {to: missed}, notify: [chat]}\n"
    )
    path = tmp_path / "callmon.yaml"
    path.write_text(
        "providers:\n"
        "  - name: door\n"
        "    type: vms-intercom\n"
        "    base_url: http://127.0.0.1:1\n"
        "    token: tok-123456\n" + extra + "notifiers:\n"
        "  chat: {urls: ['json://127.0.0.1:1/hook']}\n"
    )
    return path


def test_version() -> None:
    result = callmon("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("callmon ")


def test_check_accepts_a_valid_config(tmp_path: Path) -> None:
    result = callmon("check", "-c", str(write_config(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: 1 providers, 1 notifiers, 1 rules"


def test_check_reads_callmon_config_from_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    result = callmon("check", env={"CALLMON_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr


def test_check_reports_an_unknown_key_at_its_position(tmp_path: Path) -> None:
    path = write_config(tmp_path, extra="    pol_interval: 5s\n")
    result = callmon("check", "-c", str(path))
    assert result.returncode == 1
    assert result.stderr == f"{path}:6:5: unknown key 'pol_interval' in providers[0]\n"


def test_check_reports_a_yaml_syntax_error_in_a_rule_file(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    rule = tmp_path / "rules" / "missed.yaml"
    rule.write_text("rules:\n  - name: missed\n    when: {to: missed\n    notify: [chat]\n")
    result = callmon("check", "-c", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{rule}:4:11: invalid YAML")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_check_rejects_an_invalid_apprise_url(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("json://127.0.0.1:1/hook", "nosuchscheme://x"))
    result = callmon("check", "-c", str(path))
    assert result.returncode == 1
    assert result.stderr == (f"{path}:7:17: notifiers.chat.urls[0]: not a valid apprise URL\n")


def test_run_refuses_an_invalid_apprise_url_once_started(tmp_path: Path) -> None:
    """`run` checks notifier URLs after start-up (apprise is slow to load), with the same
    positioned message as `check`, and exits 1."""
    path = write_config(tmp_path, f"store: sqlite:///{tmp_path / 's.db'}\nlisten: 127.0.0.1:0\n")
    path.write_text(path.read_text().replace("json://127.0.0.1:1/hook", "nosuchscheme://x"))
    result = callmon("run", "-c", str(path))
    assert result.returncode == 1
    assert f"{path}:9:17: notifiers.chat.urls[0]: not a valid apprise URL\n" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_config_file_is_one_sentence(tmp_path: Path) -> None:
    result = callmon("run", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "callmon.yaml: config file not found (pass -c FILE or set CALLMON_CONFIG)\n"
    )


def test_usage_errors_exit_2() -> None:
    assert callmon("frobnicate").returncode == 2
    assert callmon().returncode == 2


def test_run_fails_clearly_when_the_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = write_config(tmp_path)
        path.write_text(
            f"listen: 127.0.0.1:{port}\nstore: sqlite:///{tmp_path}/s.db\n" + path.read_text()
        )
        result = callmon("run", "-c", str(path))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "tok-123456" not in result.stderr + result.stdout


def test_simulate_serves_all_four_apis_and_prints_a_config_that_checks(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "simulate",
            "--listen",
            f"127.0.0.1:{port}",
            "--seed",
            "3",
            "--history",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        printed = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            printed.append(line)
            if line.startswith("# end of config"):
                break
        config = "".join(printed)
        assert f"base_url: http://127.0.0.1:{port}" in config
        assert {"type: vms-intercom", "type: bird", "type: cinnox", "type: bandwidth"} <= {
            line.strip() for line in config.splitlines()
        }
        elsewhere = tmp_path / "elsewhere"  # no rules/ folder here: the config names its own
        elsewhere.mkdir()
        (elsewhere / "callmon.yaml").write_text(config)  # as printed, not a character changed
        checked = callmon("check", "-c", "callmon.yaml", cwd=elsewhere)
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.strip() == "ok: 4 providers, 1 notifiers, 8 rules"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


@pytest.mark.parametrize("provider", ["vms-intercom", "bird", "cinnox", "bandwidth"])
def test_init_writes_a_starter_that_checks_once_its_variables_are_set(
    tmp_path: Path, provider: str
) -> None:
    result = callmon("init", "--provider", provider, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rules" / "missed-calls.yaml").is_file()
    names = result.stdout.split("next: set ")[1].split(";")[0].split(", ")
    assert "ALERT_URL" in names
    steps = [line.split("#")[0].split() for line in result.stdout.splitlines()[2:]]
    assert [s[:3] for s in steps] == [
        ["callmon", "probe", "-c"],
        ["callmon", "notify", "test"],
        ["callmon", "run", "-c"],
    ]
    env = {
        name: "json://127.0.0.1:1/hook"
        if name == "ALERT_URL"
        else "https://api.example.net"
        if name.endswith("BASE_URL")
        else f"dummy-{name.lower()}"
        for name in names
    }
    unset = callmon("check", cwd=tmp_path)
    assert unset.returncode == 1  # it names variables that must be set
    checked = callmon("check", cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "ok: 1 providers, 1 notifiers, 1 rules"


def test_init_overwrites_nothing(tmp_path: Path) -> None:
    (tmp_path / "callmon.yaml").write_text("# mine\n")
    result = callmon("init", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "callmon.yaml: exists already; callmon init overwrites nothing\n"
    assert (tmp_path / "callmon.yaml").read_text() == "# mine\n"
    assert not (tmp_path / "rules").exists()


async def test_simulate_on_all_addresses_prints_an_address_others_can_reach() -> None:
    """#22: `--listen 0.0.0.0:8080` printed `base_url: http://0.0.0.0:8080`, which a container
    (or another machine) cannot connect to; it now names this machine's own address."""
    import aiohttp

    from monitor.simulator.server import Simulator

    sim = Simulator(host="0.0.0.0")
    await sim.start()
    try:
        assert "0.0.0.0" not in sim.base_url
        headers = {"Authorization": f"Bearer {sim.vms.token}", "X-Client": "web", "X-UUID": "t"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{sim.base_url}/api/v1/intercom/calls", headers=headers) as answer,
        ):
            assert answer.status == 200
    finally:
        await sim.stop()


def test_rules_code_prints_the_python_generated_for_the_rules() -> None:
    """#25: generated code is behind one generator, and what it made can be read."""
    result = callmon("rules", "code", str(ROOT / "rules"))
    assert result.returncode == 0, result.stderr
    assert "# match transition → missed" in result.stdout
    assert "def match(event):" in result.stdout
    assert "def get(value):" in result.stdout  # a `where` field's reader
    assert "def fill(event, fields):" in result.stdout  # a title of fields alone
    compile(result.stdout, "<printed>", "exec")  # it is the Python that runs
