"""The runs a worker holds, by run key, so that a cancel can reach them.

A run is registered from the moment the executor takes it (not from when a
thread starts it: a run waiting for a free thread can be cancelled too)
until it ends. One key may name several runs at once (the same run sent
again after the gateway gave up on a call).
"""

from __future__ import annotations

import threading

from tasks_app.run_control import RunControl


class ActiveRuns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._controls: dict[str, list[RunControl]] = {}

    def add(self, run_key: str, control: RunControl) -> None:
        if run_key:
            with self._lock:
                self._controls.setdefault(run_key, []).append(control)

    def remove(self, run_key: str, control: RunControl) -> None:
        if run_key:
            with self._lock:
                controls = self._controls.get(run_key, [])
                if control in controls:
                    controls.remove(control)
                if not controls:
                    self._controls.pop(run_key, None)

    def cancel(self, run_key: str) -> bool:
        """Cancel the runs named ``run_key``; False if there are none."""
        with self._lock:
            controls = list(self._controls.get(run_key, ()))
        for control in controls:
            control.cancel()
        return bool(controls)

    def cancel_all(self) -> int:
        """Cancel every run that has a run key; returns how many."""
        with self._lock:
            controls = [c for group in self._controls.values() for c in group]
        for control in controls:
            control.cancel()
        return len(controls)
