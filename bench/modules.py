"""The modules every system runs: built from WebAssembly text with
wasmtime.wat2wasm, plus the project's own hash.wasm."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parents[1]
HASH_WASM = ROOT / "hash.wasm"
HASH_C = ROOT / "examples" / "hash" / "hash.c"

NOOP_WAT = """
(module
  (func (export "run") (param $a i64) (param $b i64) (result i64)
    local.get $a
    local.get $b
    i64.add))
"""

# run(seed, n): n rounds of a 64-bit LCG (serial dependency, no memory).
CPU_WAT = """
(module
  (func (export "run") (param $seed i64) (param $n i64) (result i64)
    (local $i i64) (local $x i64)
    local.get $seed
    local.set $x
    (block $done
      (loop $next
        local.get $i
        local.get $n
        i64.ge_u
        br_if $done
        local.get $x
        i64.const 6364136223846793005
        i64.mul
        i64.const 1442695040888963407
        i64.add
        local.set $x
        local.get $i
        i64.const 1
        i64.add
        local.set $i
        br $next))
    local.get $x))
"""


def noop_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(NOOP_WAT))


def cpu_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(CPU_WAT))


def hash_wasm() -> bytes:
    return HASH_WASM.read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _engine() -> wasmtime.Engine:
    # The same configuration as workers/executor.py (epoch checks cost a little).
    config = wasmtime.Config()
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def time_run(wasm: bytes, a: int, b: int, repeat: int = 3) -> float:
    """Seconds for one call of run(a, b) in-process (best of `repeat`)."""
    engine = _engine()
    module = wasmtime.Module(engine, wasm)
    best = float("inf")
    for _ in range(repeat):
        store = wasmtime.Store(engine)
        store.set_epoch_deadline(1 << 40)
        run = wasmtime.Instance(store, module, []).exports(store)["run"]
        assert isinstance(run, wasmtime.Func)
        t0 = time.perf_counter()
        run(store, a, b)
        best = min(best, time.perf_counter() - t0)
    return best


def calibrate_cpu(target: float = 0.5) -> tuple[int, float]:
    """Iterations of CPU_WAT's loop that take about `target` seconds here."""
    wasm = cpu_wasm()
    n = 10_000_000
    for _ in range(8):
        took = time_run(wasm, 1, n, repeat=2)
        if took > 0.05:
            n = int(n * target / took)
            if abs(took - target) / target < 0.05:
                break
        else:
            n *= 10
    return n, time_run(wasm, 1, n, repeat=2)


def build_native_hash(out_dir: Path) -> Path:
    """The hash puzzle compiled natively with gcc -O2 (bench/native_hash.c
    includes examples/hash/hash.c)."""
    exe = out_dir / "native_hash"
    src = Path(__file__).with_name("native_hash.c")
    subprocess.run(["gcc", "-O2", "-w", "-o", str(exe), str(src), f"-I{HASH_C.parent}"], check=True)
    return exe


def time_native_hash(exe: Path, input: int, difficulty: int) -> tuple[float, str]:
    """Wall seconds of the native run (process start included, ~1 ms) and its answer."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(exe), str(input), str(difficulty)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return time.perf_counter() - t0, out
