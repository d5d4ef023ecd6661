"""The project's own settings: how the gateway process serves HTTP.

Read once by ``wwproject/settings.py`` (``settings.WW_PROJECT``); see
``tasks_app/settings_spec.py`` for how a field becomes ``WW_<NAME>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks_app.settings_spec import EnvSettings, setting


@dataclass(frozen=True)
class ProjectSettings(EnvSettings):
    http_threads: int = setting(
        2,
        "threads that run Django requests (SQLite takes one writer at a time: more only "
        "wait for each other)",
    )
    db_conn_max_age: int = setting(
        600, "how long a request thread keeps its database connection", unit="s"
    )
