"""Help texts and the README agree: every option the README gives a command is in that command's `--help`, and
every option the README mentions at all is an option of some metrics-sync command (or of a tool the README
shows beside it: pip, pip-tools)."""

from __future__ import annotations

import re

import pytest

from metrics_sync.cli.main import COMMANDS
from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*[a-z]")
# Options of the other tools the README's commands use.
OTHER_TOOLS = {"--require-hashes", "--only-binary", "--no-deps", "--no-build-isolation", "--generate-hashes",
               "--output-file"}
COMMON = {"--config", "--no-color"}
API_COMMON = {"--base-url", "--timeout", "--max-wait", "--verbose"}


def help_text(*command: str) -> str:
    result = run_cli(*command, "--help")
    assert result.code == 0, result.err
    return result.out


def options_in(text: str) -> set[str]:
    return set(OPTION.findall(text))


def readme_commands() -> dict[str, set[str]]:
    """command → the options the README writes after `metrics-sync COMMAND` on one line (in code and in the
    synopsis block, whose indented lines continue the command above them)."""
    found: dict[str, set[str]] = {name: set() for name in COMMANDS}
    synopsis = README.split("## Commands\n\n```text\n")[1].split("```")[0]
    current = None
    for line in synopsis.splitlines():
        match = re.match(r"metrics-sync (\w+)", line)
        if match:
            current = match.group(1) if match.group(1) in COMMANDS else None
        if current and (match or line.startswith(" ")):
            found[current] |= options_in(line)
    for match in re.finditer(r"metrics-sync (\w+)([^`\n#|;&]*)", README):
        if match.group(1) in COMMANDS:
            found[match.group(1)] |= options_in(match.group(2))
    return found


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_the_readme_gives_a_command_is_in_its_help(command: str) -> None:
    documented = readme_commands()[command]
    offered = options_in(help_text(command))
    assert documented, f"the README shows no option of `metrics-sync {command}`"
    assert documented <= offered, f"`metrics-sync {command}` has no {sorted(documented - offered)} (README)"


def test_the_common_options_are_in_the_help_of_every_command_that_takes_them() -> None:
    common_paragraph = README.split("Common options, accepted before or after the command")[1].split("\n\n")[0]
    assert options_in(common_paragraph) == COMMON | API_COMMON
    assert options_in(help_text()) >= COMMON | API_COMMON
    for name, module in COMMANDS.items():
        expected = COMMON | (API_COMMON if module.CALLS_API else set())
        assert expected <= options_in(help_text(name)), name
    assert "--verbose" in options_in(help_text("emulator"))  # the paragraph says what it does there


def test_the_emulator_takes_the_common_options_as_the_readme_says() -> None:
    # The emulator checks its options' values once it has parsed them: a bad --fail-rate after the common options
    # says they were taken.
    for argv in (("emulator", "--no-color", "--config", "metrics-sync.yaml", "-v"),
                 ("--no-color", "--config", "metrics-sync.yaml", "-v", "emulator")):
        result = run_cli(*argv, "--fail-rate", "2")
        assert result.err == "error: --fail-rate must be between 0 and 1\n", (argv, result.err)
    for refused in (("--base-url", "http://127.0.0.1:8765"), ("--timeout", "5"), ("--timeout=5",),
                    ("--max-wait", "5")):
        for argv in (("emulator", *refused), (*refused, "emulator")):
            result = run_cli(*argv)
            assert result.code == 1
            assert result.err.startswith(f"error: {refused[0].split('=')[0]} is only for commands that call "
                                         "LaunchDarkly (plan, apply, export, health, doctor), not `emulator`"), \
                result.err


def test_every_option_the_readme_mentions_exists() -> None:
    everything = options_in(help_text()) | {"--help", "--version"}
    for name in COMMANDS:
        everything |= options_in(help_text(name))
    unknown = options_in(README) - everything - OTHER_TOOLS
    assert not unknown, f"the README mentions options no command has: {sorted(unknown)}"


def test_the_check_is_not_vacuous() -> None:
    assert "--detailed-exitcode" in readme_commands()["plan"]
    assert "--reader-token" in readme_commands()["emulator"]
    assert "--formt" not in options_in(help_text("plan"))
