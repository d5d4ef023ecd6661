"""A worker node's settings: whom it joins, how it leaves, the caps on a run.

Read once by ``wwproject/settings.py`` (``settings.WW_WORKERS``); see
``tasks_app/settings_spec.py`` for how a field becomes ``WW_<NAME>``.
What a worker shares with the gateway (pings, result size, compile bounds,
the default time limit) is in ``cluster_app/conf.py`` and ``tasks_app/conf.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks_app.settings_spec import KIB, MIB, EnvSettings, setting


@dataclass(frozen=True)
class WorkerSettings(EnvSettings):
    dial: str = setting("", "peer ID of the gateway a worker joins (`runworker --dial`)")
    addr: str = setting(
        "", "static bootstrap multiaddrs a worker dials instead of discovering (`--addr`)"
    )
    stop_grace: float = setting(
        30.0, "on SIGTERM, how long a worker may finish its runs in flight (`--grace`)", unit="s"
    )
    execution_log: str = setting(
        "",
        "a file each worker appends a JSON line to per run it finished (task, run, worker, "
        "state, times, error; the tests check it against the database); empty: off",
    )
    run_memory_bytes: int = setting(256 * MIB, "a run's linear memory cap", unit="bytes")
    run_output_bytes: int = setting(64 * KIB, "bytes of a run's stdout kept", unit="bytes")
