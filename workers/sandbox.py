"""The bounds of one run's store: memory, tables, instances, and time.

Each run gets a fresh store capped by the store's limiter (memory, table
elements, instances, tables, memories; the stack is the engine's
``max_wasm_stack``, set where the engine is made). Time is bounded by epoch
interruption: one ticker thread per engine advances its epoch every ``TICK``
seconds, and at each tick the store's deadline callback asks the run's
:class:`~tasks_app.run_control.RunControl` whether it is out of time or
cancelled (host calls that could wait are bounded in ``workers.wasi_bounds``).
"""

from __future__ import annotations

import threading

import wasmtime

from tasks_app.run_control import RunControl
from workers.compat_wasmtime import set_epoch_deadline_callback

TICK = 0.01  # seconds between epoch increments: the granularity of time limits
TABLE_ELEMENTS_LIMIT = 100_000  # 8 bytes each
INSTANCES_LIMIT = 4
TABLES_LIMIT = 4
MEMORIES_LIMIT = 4


class EpochTicker:
    """Advances ``engine``'s epoch every ``TICK`` seconds until closed."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="ww-epoch-ticker", daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            self._engine.increment_epoch()

    def close(self) -> None:
        """Stop ticking. A module still running then never reaches its
        deadline: close only once no run is left. Idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def new_store(engine: wasmtime.Engine, memory_limit: int, control: RunControl) -> wasmtime.Store:
    """A store for one run, capped, that ends the run within a tick of
    ``control`` saying it must stop."""
    store = wasmtime.Store(engine)
    store.set_limits(
        memory_size=memory_limit,
        table_elements=TABLE_ELEMENTS_LIMIT,
        instances=INSTANCES_LIMIT,
        tables=TABLES_LIMIT,
        memories=MEMORIES_LIMIT,
    )
    # The callback runs at every tick and decides whether the run goes on;
    # the control keeps it alive as long as the store.
    control.callback = set_epoch_deadline_callback(store, control.stop_reason)
    store.set_epoch_deadline(1)
    return store
