"""The README's settings table is the one the settings objects make, and no
code reads a WW_* variable the objects do not define."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks_app.conf import TasksSettings
from tasks_app.settings_spec import EnvSettings, format_value, setting
from wwproject import settings_table

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE = ("tasks_app", "cluster_app", "workers", "wwproject")
# A WW_ name read from django.conf settings (attribute or getattr).
READ = re.compile(r"settings\.(WW_[A-Z0-9_]+)|getattr\(settings, [\"'](WW_[A-Z0-9_]+)[\"']")
# A WW_ variable read from the environment.
ENVIRON = re.compile(r"environ(?:\.get\(|\[)\s*[\"'](WW_[A-Z0-9_]+)[\"']")
# The one place the environment is read.
SETTINGS_MODULES = {"wwproject/settings.py", "wwproject/settings_production.py"}


def test_the_readme_table_is_the_one_the_settings_make() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert settings_table.current_block(readme) == settings_table.render(), (
        f"README.md's settings table is stale: run {settings_table.COMMAND}"
    )


def test_the_table_has_a_row_per_setting_with_its_default() -> None:
    block = settings_table.current_block((PROJECT_ROOT / "README.md").read_text())
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `(WW_[A-Z0-9_]+)` \| ([^|]*) \|", block, re.MULTILINE)
    }
    knobs = [knob for knob, _ in settings_table.all_knobs()]
    assert set(rows) == {knob.env for knob in knobs}
    for knob in knobs:
        assert rows[knob.env] == knob.shown_default, knob.env
    assert rows["WW_MODULE_MAX_BYTES"] == "16 MiB"
    assert rows["WW_PREFETCH"] == format_value(TasksSettings.prefetch) == "64"


def test_a_setting_missing_from_the_readme_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # What makes CI fail for a setting added without regenerating the README.
    @dataclass(frozen=True)
    class Extra(EnvSettings):
        brand_new: int = setting(5, "a knob nobody documented")

    readme = (PROJECT_ROOT / "README.md").read_text()
    monkeypatch.setattr(
        settings_table, "GROUPS", (*settings_table.GROUPS, (Extra, "tasks_app/extra.py"))
    )
    assert "| `WW_BRAND_NEW` | 5 | a knob nobody documented |" in settings_table.render()
    assert settings_table.current_block(readme) != settings_table.render()
    assert settings_table.main(["--check"]) == 1


def test_the_code_reads_only_defined_settings() -> None:
    defined = {knob.env for knob, _ in settings_table.all_knobs()} | {
        "WW_TASKS",
        "WW_CLUSTER",
        "WW_WORKERS",
        "WW_PROJECT",
    }
    read: dict[str, str] = {}
    for package in CODE:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            for match in READ.finditer(path.read_text()):
                name = match.group(1) or match.group(2)
                read.setdefault(name, str(path.relative_to(PROJECT_ROOT)))
    assert read, "the pattern found no reads at all"
    unknown = {name: where for name, where in read.items() if name not in defined}
    assert not unknown, f"read but defined in no conf module: {unknown}"


def test_no_code_reads_a_ww_variable_from_the_environment_itself() -> None:
    elsewhere = []
    for package in CODE:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            where = str(path.relative_to(PROJECT_ROOT))
            if where not in SETTINGS_MODULES:
                elsewhere += [f"{where}: {m.group(1)}" for m in ENVIRON.finditer(path.read_text())]
    assert not elsewhere, f"read from os.environ, not from the settings objects: {elsewhere}"
