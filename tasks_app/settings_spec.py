"""How a `WW_*` setting is declared, read from the environment and shown.

Each app owns its settings in a frozen dataclass (``tasks_app/conf.py``,
``cluster_app/conf.py``, ``workers/conf.py``, ``wwproject/conf.py``); a
setting that two layers read lives in the lower one. A field *is* the
setting: its name gives the variable (``prefetch`` is ``WW_PREFETCH``), its
annotation the type, :func:`setting` its default and a one-line doc.
``wwproject/settings.py`` reads the environment once into these objects
(``from_env``), and the README's table is rendered from them
(``wwproject/settings_table.py``), so nothing about a setting is written twice.

This module is the machinery, in the lowest layer so that every app can use
it without importing the project: one parser per type, the error naming the
variable and the value it refused.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

PREFIX = "WW_"
KIB = 1024
MIB = 1024 * 1024

_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


class Choice(enum.StrEnum):
    """A setting that takes one of a few words; matched without regard to case."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        text = str(value).strip().lower()
        for member in cls:
            if member.value.lower() == text:
                return member
        return None


def setting(default: T, doc: str, *, unit: str = "", shown: str = "", secret: bool = False) -> T:
    """A settings field: its default and its one line in the README.

    ``unit`` (``"bytes"`` or ``"s"``) is how the default is shown; ``shown``
    replaces it where the real default depends on the machine (a path).
    A ``secret`` is kept out of the object's repr (Django's error pages show
    settings).
    """
    metadata = {"doc": doc, "unit": unit, "shown": shown}
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)


# -- parsers: the raw text of a variable that is set and not blank -----------


def parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def parse_float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None


def parse_bool(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE_WORDS:
        return True
    if text in _FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name} must be true or false (1/0, true/false, yes/no, on/off), not {raw!r}"
    )


def parse_str(name: str, raw: str) -> str:
    return raw


def parse_path(name: str, raw: str) -> Path:
    return Path(raw).resolve()


def parse_words(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated words, blanks dropped."""
    return tuple(word.strip() for word in raw.split(",") if word.strip())


def parse_choice(choice: type[Choice]) -> Callable[[str, str], Choice]:
    def parse(name: str, raw: str) -> Choice:
        try:
            return choice(raw)
        except ValueError:
            words = [member.value for member in choice]
            allowed = ", ".join(words[:-1]) + f" or {words[-1]}"
            raise ImproperlyConfigured(
                f"{name} must be {allowed}, not {raw.strip().lower()!r}"
            ) from None

    return parse


_PARSERS: dict[object, Callable[[str, str], Any]] = {
    int: parse_int,
    float: parse_float,
    bool: parse_bool,
    str: parse_str,
    Path: parse_path,
    tuple[str, ...]: parse_words,
}


def parser_for(kind: object) -> Callable[[str, str], Any]:
    if isinstance(kind, type) and issubclass(kind, Choice):
        return parse_choice(kind)
    try:
        return _PARSERS[kind]
    except KeyError:
        raise TypeError(f"no parser for settings of type {kind!r}") from None


def env_value(environ: Mapping[str, str], name: str, kind: type[T], default: T) -> T:
    """The variable `name` parsed as `kind`; `default` when unset or blank.
    (For the few non-``WW_`` variables the project reads, e.g. ``DJANGO_DEBUG``.)"""
    raw = environ.get(name, "")
    if not raw.strip():
        return default
    return typing.cast(T, parser_for(kind)(name, raw))


# -- the settings objects ------------------------------------------------------


@dataclass(frozen=True)
class Knob:
    """One setting as the README shows it."""

    env: str  # the variable, e.g. WW_PREFETCH
    field: str  # the attribute on the settings object, e.g. prefetch
    kind: object
    default: Any
    doc: str
    unit: str
    shown: str

    @property
    def shown_default(self) -> str:
        return self.shown or format_value(self.default, self.unit)


class EnvSettings:
    """Base of the apps' frozen settings dataclasses."""

    @classmethod
    def knobs(cls) -> list[Knob]:
        hints = typing.get_type_hints(cls)
        knobs = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # subclasses are dataclasses
            knobs.append(
                Knob(
                    env=PREFIX + f.name.upper(),
                    field=f.name,
                    kind=hints[f.name],
                    default=f.default,
                    doc=f.metadata["doc"],
                    unit=f.metadata["unit"],
                    shown=f.metadata["shown"],
                )
            )
        return knobs

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **defaults: Any) -> Self:
        """Every setting from its variable; unset or blank ones keep their
        default (`defaults` replaces some, e.g. the production settings')."""
        unknown = set(defaults) - {knob.field for knob in cls.knobs()}
        if unknown:
            raise TypeError(f"{cls.__name__} has no settings {sorted(unknown)}")
        values = dict(defaults)
        for knob in cls.knobs():
            raw = environ.get(knob.env, "")
            if raw.strip():
                values[knob.field] = parser_for(knob.kind)(knob.env, raw)
        return cls(**values)


def format_value(value: object, unit: str = "") -> str:
    """A default as a person reads it: 16 MiB, 5 s, 100,000, true, (empty)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if value == "" or value == ():
        return "(empty)"
    if unit == "bytes" and isinstance(value, int):
        for size, name in ((MIB, "MiB"), (KIB, "KiB")):
            if value >= size and value % size == 0:
                return f"{value // size:,} {name}"
        return f"{value:,} bytes"
    if isinstance(value, int | float):
        whole = float(value).is_integer()
        text = f"{int(value):,}" if whole and value >= 10_000 else f"{value:g}"
        if unit != "s":
            return text
        if value >= 3600 and value % 3600 == 0:  # 86,400 s (1 d), 7,200 s (2 h)
            hours = int(value // 3600)
            return f"{text} s ({hours // 24} d)" if hours % 24 == 0 else f"{text} s ({hours} h)"
        return f"{text} s"
    return str(value)
