"""The README's table of ``WW_*`` settings, made from the settings objects.

    .venv/bin/python -m wwproject.settings_table --write   # rewrite README.md's block
    .venv/bin/python -m wwproject.settings_table --check   # exit 1 if it is stale

The block sits between ``<!-- settings:start -->`` and ``<!-- settings:end -->``;
``tests/unit/test_conf_readme.py`` fails when it differs from what this makes, so
a setting added to a conf module without regenerating the README fails CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cluster_app.conf import ClusterSettings
from tasks_app.conf import TasksSettings
from tasks_app.settings_spec import EnvSettings, Knob
from workers.conf import WorkerSettings
from wwproject.conf import ProjectSettings

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
COMMAND = ".venv/bin/python -m wwproject.settings_table --write"

# Each app's settings, lowest layer first, with the module that defines them.
GROUPS: tuple[tuple[type[EnvSettings], str], ...] = (
    (TasksSettings, "tasks_app/conf.py"),
    (ClusterSettings, "cluster_app/conf.py"),
    (WorkerSettings, "workers/conf.py"),
    (ProjectSettings, "wwproject/conf.py"),
)


def all_knobs() -> list[tuple[Knob, str]]:
    return [(knob, module) for group, module in GROUPS for knob in group.knobs()]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The block, markers included."""
    lines = [
        START,
        f"<!-- made by `{COMMAND}`; edit the conf modules, not this -->",
        "",
        "| setting | default | what it does | defined in |",
        "| --- | --- | --- | --- |",
    ]
    for knob, module in all_knobs():
        lines.append(
            f"| `{knob.env}` | {_cell(knob.shown_default)} | {_cell(knob.doc)} | `{module}` |"
        )
    lines.append(END)
    return "\n".join(lines)


def current_block(text: str) -> str:
    """The README's block as it is, markers included."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README has no {START} … {END} block")
    return text[start : end + len(END)]


def rewritten(text: str) -> str:
    return text.replace(current_block(text), render())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite README.md's block")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md's block is stale")
    args = parser.parse_args(argv)
    text = README.read_text()
    if args.write:
        README.write_text(rewritten(text))
        return 0
    if args.check:
        if current_block(text) != render():
            print(f"{README.name}'s settings table is stale: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    print(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
