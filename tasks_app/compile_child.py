"""The child process that compiles modules for ``tasks_app.bounded_compile``.

Run as ``python -m tasks_app.compile_child PROFILE MEMORY_BYTES``. It limits its
own address space to MEMORY_BYTES, makes one engine, says it is ready, then
compiles one module per request until its stdin closes. It imports neither
Django nor anything that starts threads, so it is up in tens of milliseconds
and its memory is wasmtime's.

Frames on both pipes: a 4-byte big-endian length, then that many bytes.
Request: the module's bytes. Reply: b"K" + kind ("run" or "wasi") + b"\\n" +
the compiled artifact (profile "executor"; empty for "inspect"), or b"E" + the
reason the module is invalid. Running out of memory ends the process with
EXIT_OUT_OF_MEMORY (or kills it by a signal when wasmtime aborts).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import struct
import sys
from typing import BinaryIO, Literal

import wasmtime

Profile = Literal["inspect", "executor"]

READY = b"R"
EXIT_OUT_OF_MEMORY = 3
PR_SET_PDEATHSIG = 1
MAX_WASM_STACK = 1 << 20  # the executor's; well under the 8 MiB pthread stack of pool threads


def make_engine(profile: Profile) -> wasmtime.Engine:
    """The engine a profile compiles with. The executor deserializes what the
    child compiled, so its engine is made here too: the two must agree."""
    config = wasmtime.Config()
    # One core per compile: a hostile module must not take both of a small
    # machine's cores, and the limit in seconds then means the same everywhere.
    config.parallel_compilation = False
    if profile == "executor":
        config.epoch_interruption = True
        config.consume_fuel = False
        config.max_wasm_stack = MAX_WASM_STACK
    return wasmtime.Engine(config)


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    data = stream.read(size)
    return data if len(data) == size else None


def _write_frame(stream: BinaryIO, data: bytes) -> None:
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _die_with_parent() -> None:
    """Ask Linux to kill this child when its parent dies: a compile under way
    would otherwise go on, unbounded in time, after the gateway is gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's kill still bounds it
        return
    if os.getppid() == 1:  # the parent died before the request was made
        os._exit(0)


def main(argv: list[str]) -> int:
    profile, memory_bytes = argv[0], int(argv[1])
    if profile not in ("inspect", "executor"):
        raise SystemExit(f"unknown profile {profile!r}")
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    _die_with_parent()
    # Imported after the limit, so that it counts what they map too.
    from tasks_app.modules import InvalidModule, compile_module, inspect_compiled

    engine = make_engine(profile)  # type: ignore[arg-type]  # the profile name was checked against the known ones above
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(READY)
    stdout.flush()
    while (wasm := _read_frame(stdin)) is not None:
        try:
            module = compile_module(engine, wasm)
            kind = inspect_compiled(module, linker)
            artifact = module.serialize() if profile == "executor" else b""
            reply = b"K" + kind.encode() + b"\n" + artifact
            del module
        except InvalidModule as exc:
            reply = b"E" + str(exc).encode()
        except MemoryError:
            os._exit(EXIT_OUT_OF_MEMORY)
        _write_frame(stdout, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
