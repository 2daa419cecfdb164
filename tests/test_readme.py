"""Every line of the README works as written: each YAML block passes `callmon check` (with the
environment variables it names set to dummies), each `callmon` command line is accepted by the
program's own parser, and the commands that can run offline run and succeed."""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from monitor.cli import parser
from monitor.model import Call, CallState, Event, EventKind, Intercom
from monitor.tracking.recorder import Recorder
from tests.test_cli import callmon

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int
    """The README line of the opening fence."""


def blocks(path: Path = README) -> list[Block]:
    found, lang, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            if lang is None:
                lang, start, lines = line[3:].strip() or "text", number, []
            else:
                found.append(Block(lang, "\n".join(lines) + "\n", start))
                lang = None
        elif lang is not None:
            lines.append(line)
    return found


YAML_BLOCKS = [b for b in blocks() if b.lang == "yaml"]
SH_BLOCKS = [b for b in blocks() if b.lang == "sh"]


def dummy(name: str) -> str:
    """A value of the right shape for a README `${NAME}`."""
    if name.endswith("BASE_URL"):
        return "https://api.example.net"
    if name.endswith("_URL"):
        return "json://127.0.0.1:1/hook"
    if name == "TG_TOKEN":
        return "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    if name == "TG_CHAT":
        return "-1001234567890"
    return f"dummy-{name.lower()}-0123456789abcdef"


def environment_of(names: list[str]) -> dict[str, str]:
    return {name: dummy(name) for name in names}


def environment(*texts: str) -> dict[str, str]:
    """A dummy for each `${NAME}` in `texts`."""
    names = {m for text in texts for m in re.findall(r"\$\{([A-Z0-9_]+)", text)}
    return environment_of(sorted(names))


def main_config() -> Block:
    """The README's configuration example: the block that sets providers and notifiers."""
    (block,) = [b for b in YAML_BLOCKS if "\nnotifiers:" in b.text and "\nproviders:" in b.text]
    return block


def merged(fragment: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """A config fragment on top of the main example: its providers completed by the example's
    provider of the same name (`# …the polling keys as above…`), the rest replacing."""
    out = {**base, **{k: v for k, v in fragment.items() if k != "providers"}}
    if "providers" in fragment:
        by_name = {p["name"]: p for p in base["providers"]}
        out["providers"] = [{**by_name.get(p["name"], {}), **p} for p in fragment["providers"]]
    return out


def secrets_in(data: Any, sandbox: Path) -> Any:
    """`*_file: /run/secrets/…` pointed at a dummy file of the same name in the sandbox."""
    if isinstance(data, list):
        return [secrets_in(item, sandbox) for item in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        if key.endswith("_file") and isinstance(value, str) and value.startswith("/"):
            path = sandbox / "secrets" / Path(value).name
            path.parent.mkdir(exist_ok=True)
            path.write_text(dummy(key.upper()) + "\n")
            value = str(path)
        out[key] = secrets_in(value, sandbox)
    return out


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A folder as the README's configuration expects: `callmon.yaml` and `rules/` (the example
    rules that ship with callmon)."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "callmon.yaml").write_text(main_config().text)
    return tmp_path


def yaml_text(data: Any) -> str:
    from io import StringIO

    out = StringIO()
    YAML().dump(data, out)
    return out.getvalue()


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=[f"README.md:{b.line}" for b in YAML_BLOCKS])
def test_every_yaml_block_passes_check(block: Block, sandbox: Path) -> None:
    """A rule file goes beside the example rules under the example config; a config (or a part
    of one) is checked as the example config with it applied."""
    env = environment(main_config().text, block.text)
    data = YAML(typ="safe").load(block.text)
    config = sandbox / "callmon.yaml"
    if isinstance(data, dict) and set(data) <= {"version", "rules"}:
        shutil.rmtree(sandbox / "rules")  # the example rules may hold the same names
        (sandbox / "rules").mkdir()
        (sandbox / "rules" / f"readme-{block.line}.yaml").write_text(block.text)
    elif block is not main_config():
        base = YAML(typ="safe").load(main_config().text)
        config.write_text(yaml_text(secrets_in(merged(data, base), sandbox)))
    result = callmon("check", "-c", str(config), cwd=sandbox, env=env)
    assert result.returncode == 0, f"README.md:{block.line}: {result.stderr}"
    assert result.stdout.startswith("ok:")


def command_lines() -> list[tuple[int, str]]:
    """Every `callmon …` command of the README's shell blocks, continuations joined, comments
    dropped, as (README line, command)."""
    found = []
    for block in SH_BLOCKS:
        pending, start = "", 0
        for offset, raw in enumerate(block.text.splitlines(), 1):
            line = raw.split("  #")[0].split(" # ")[0].rstrip()
            if not pending:
                start = block.line + offset
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = (pending + line).strip(), ""
            if line.startswith("callmon"):
                found.append((start, line))
    return found


def variants(command: str) -> list[list[str]]:
    """A README command as argument lists: `[optional parts]` left out, each put in alone, and
    all put in; each of `a|b|c` in turn; `…` standing for the config file, `N` and `ID` for a
    number."""
    command = command.replace("-c …", "-c callmon.yaml")
    groups = list(re.finditer(r"\s*\[([^\[\]]+)\]", command))

    def keeping(kept: set[int]) -> str:
        text, last = "", 0
        for i, group in enumerate(groups):
            text += command[last : group.start()] + (" " + group[1] if i in kept else "")
            last = group.end()
        return text + command[last:]

    texts = [keeping(set()), *(keeping({i}) for i in range(len(groups)))]
    texts.append(keeping(set(range(len(groups)))))
    out = []
    for text in dict.fromkeys(texts):
        words = ["1" if w in ("N", "ID") else w for w in shlex.split(text)]
        choices = max((len(w.split("|")) for w in words), default=1)
        for i in range(choices):  # `list|retry|purge`: each in turn
            argv = [w.split("|")[min(i, len(w.split("|")) - 1)] for w in words[1:]]
            if argv not in out:
                out.append(argv)
    return out


COMMANDS = command_lines()


@pytest.mark.parametrize(("line", "command"), COMMANDS, ids=[f"README.md:{n}" for n, _ in COMMANDS])
def test_every_command_line_is_accepted_as_written(line: int, command: str) -> None:
    for argv in variants(command):
        try:
            parser().parse_args(argv)
        except SystemExit as exc:
            if exc.code != 0:  # --version exits 0 after printing
                pytest.fail(f"README.md:{line}: `{command}` is a usage error ({argv})")


def record_events(path: Path) -> None:
    """A recording of a missed call at the front door, as `callmon run --record` writes it."""
    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    door = Intercom(158, "Front door", "1 Main Street")
    recorder = Recorder(path)
    for frm, to in ((None, CallState.RINGING), (CallState.RINGING, CallState.MISSED)):
        call = Call("1001", to, to.value, created_at=at, intercom=door, marker=to.value)
        event = Event(
            EventKind.TRANSITION,
            "front-door",
            "vms-intercom",
            to.value,
            at,
            None if frm is None else frm.value,
            call=call,
        )
        recorder.record(event)
    recorder.close()


OFFLINE = ("check", "rules", "config", "--version", "init")
"""The commands that run without providers, notifiers or a store."""


def test_the_commands_that_run_offline_succeed(sandbox: Path) -> None:
    """Run in the example's folder, every README command of `OFFLINE` exits 0."""
    env = environment(main_config().text)
    record_events(sandbox / "events.jsonl")
    ran = []
    for line, command in COMMANDS:
        for argv in variants(command):
            if argv[0] not in OFFLINE or "--expect" in argv:
                continue
            if argv[0] == "init":  # in a folder of its own, then checked as it says
                folder = sandbox / f"init-{len(ran)}"
                folder.mkdir()
                result = callmon(*argv, cwd=folder, env=env)
                names = result.stdout.split("next: set ")[1].split(";")[0].split(", ")
                checked = callmon("check", cwd=folder, env={**env, **environment_of(names)})
                assert checked.returncode == 0, f"README.md:{line}: {argv}: {checked.stderr}"
            else:
                result = callmon(*argv, cwd=sandbox, env=env)
            assert result.returncode == 0, f"README.md:{line}: {argv}: {result.stderr}"
            ran.append(argv)
    assert ["check", "-c", "callmon.yaml"] in ran
    assert ["init", "--provider", "bird"] in ran
    assert any(argv[:2] == ["rules", "test"] and "-c" not in argv for argv in ran)
    assert any(argv[:2] == ["rules", "test"] and "-c" in argv for argv in ran)


def test_the_blocks_are_found() -> None:
    """The extraction sees the README's examples (an empty list would pass every test above)."""
    assert len(YAML_BLOCKS) >= 5
    assert len(COMMANDS) >= 15
    assert main_config().line > 0


def _commands(text: str) -> list[str]:
    """Shell lines with their continuations joined and spaces collapsed."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip()]


def test_the_image_test_runs_the_readmes_container_commands_as_written() -> None:
    """#22: CI runs the README's `docker build` and `docker run` lines, not a variant of them;
    the one difference allowed is the published host port (a free one in the test)."""
    script = (ROOT / "deploy" / "test-image.sh").read_text()
    marked = re.findall(r"# --- README: Container \((\w+)\) ---\n(.*?)\n\s*# ---\n", script, re.S)
    assert [name for name, _ in marked] == ["build", "run"]
    ran = [c.replace('"$port":9464', "9464:9464") for _, text in marked for c in _commands(text)]
    section = README.read_text().split("## Container\n", 1)[1]
    block = next(b for b in blocks() if b.lang == "sh" and b.text.strip() in section)
    assert _commands(block.text) == ran
