"""Compiling a module where its time and memory are bounded: in a child process.

Compiling is not free: one valid 9 MB module of a million tiny functions took
~21 s and ~5 GB. Neither wasmtime nor Python can stop a compile half-way, so
it happens in a child (``tasks_app.compile_child``) whose address space is
limited by RLIMIT_AS and which is killed when its time is up. The gateway
uses it to check uploads (profile "inspect"); a worker uses it to compile the
module of a run (profile "executor": the child sends the compiled artifact
back, which the worker deserializes in a fraction of a millisecond), its wait
bounded by the run's own deadline and ended by its cancel.

Children are kept warm between modules (up to ``keep`` idle ones), so an
ordinary module costs a round trip over a pipe rather than a process start.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tasks_app.compile_child import EXIT_OUT_OF_MEMORY, READY, Profile
from tasks_app.modules import InvalidModule, ModuleKind
from tasks_app.run_control import RunControl, RunStopped

START_TIMEOUT = 30.0  # seconds for a child to come up (not counted against a module)
POLL = 0.02  # seconds between looks at a run's cancel while its module compiles
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


class ModuleTooComplex(InvalidModule):
    """Compiling the module needed more time or memory than allowed; str() names the limit."""


class CompilerUnavailable(RuntimeError):
    """No compile child could be started (a fault of this host, not of the module)."""


@dataclass(frozen=True)
class CompileResult:
    kind: ModuleKind
    artifact: bytes  # the compiled module, serialized (profile "executor"); b"" otherwise


class _Child:
    def __init__(self, profile: Profile, memory_bytes: int) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": _PACKAGE_ROOT,
            # glibc reserves 64 MiB of address space per thread arena; the
            # limit is for wasmtime's memory, not for reservations.
            "MALLOC_ARENA_MAX": "1",
        }
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tasks_app.compile_child", profile, str(memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=_PACKAGE_ROOT,
            env=env,
            start_new_session=True,  # a ^C to the gateway is not the child's to handle
        )
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self._in = self.popen.stdin
        self._out = self.popen.stdout.fileno()
        try:
            if self._read(1, time.monotonic() + START_TIMEOUT, None) != READY:
                raise CompilerUnavailable("the module compiler did not start")
        except (EOFError, TimeoutError) as exc:
            self.kill()
            raise CompilerUnavailable(f"the module compiler did not start: {exc!r}") from exc

    def ask(self, wasm: bytes, deadline: float, control: RunControl | None) -> bytes:
        try:
            self._in.write(struct.pack(">I", len(wasm)) + wasm)
            self._in.flush()
        except OSError as exc:
            raise EOFError from exc
        (size,) = struct.unpack(">I", self._read(4, deadline, control))
        return self._read(size, deadline, control)

    def _read(self, size: int, deadline: float, control: RunControl | None) -> bytes:
        data = bytearray()
        while len(data) < size:
            if control is not None and control.stop_reason():
                raise RunStopped(control.reason)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            wait = min(left, POLL) if control is not None else left
            readable, _, _ = select.select([self._out], [], [], wait)
            if readable:
                chunk = os.read(self._out, min(size - len(data), 1 << 20))
                if not chunk:
                    raise EOFError
                data += chunk
        return bytes(data)

    def kill(self) -> int | None:
        """Stop the child (by its own PID) and return how it ended."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                stream.close()
        return self.popen.wait()


class Compiler:
    """Compiles modules in child processes limited to ``memory_bytes`` of address space."""

    def __init__(self, profile: Profile, *, memory_bytes: int, keep: int = 2) -> None:
        self.profile: Profile = profile
        self.memory_bytes = memory_bytes
        self.keep = keep
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False

    def compile(
        self, wasm: bytes, *, seconds: float, control: RunControl | None = None
    ) -> CompileResult:
        """Compile and classify ``wasm``. Raises :class:`InvalidModule` for an
        invalid module, :class:`ModuleTooComplex` past ``seconds`` or the
        memory limit, and :class:`RunStopped` when ``control`` (a run whose
        module this is) is cancelled or out of time first."""
        child = self._take()
        deadline = time.monotonic() + seconds
        try:
            reply = child.ask(wasm, deadline, control)
        except TimeoutError:
            child.kill()
            raise ModuleTooComplex(
                f"module too complex: compiling took over {seconds:g} s"
            ) from None
        except RunStopped:
            child.kill()
            raise
        except EOFError:
            code = child.kill()
            if code in (EXIT_OUT_OF_MEMORY, -signal.SIGABRT, -signal.SIGSEGV, -signal.SIGKILL):
                raise ModuleTooComplex(
                    f"module too complex: compiling needed over {_mib(self.memory_bytes)}"
                ) from None
            raise CompilerUnavailable(f"the module compiler ended with code {code}") from None
        except BaseException:
            child.kill()
            raise
        self._give_back(child)
        if reply[:1] == b"E":
            raise InvalidModule(reply[1:].decode("utf-8", errors="replace"))
        kind, _, artifact = reply[1:].partition(b"\n")
        return CompileResult(kind="run" if kind == b"run" else "wasi", artifact=artifact)

    def warm(self) -> None:
        """Start one child now, so that the first module does not wait for it."""
        self._give_back(self._take())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()

    def _take(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                # An idle child can end by itself: its parent-death signal
                # follows the thread that started it, not the process.
                if child.popen.poll() is None:
                    return child
                child.kill()
        return _Child(self.profile, self.memory_bytes)

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.keep:
                self._idle.append(child)
                return
        child.kill()


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


_shared: dict[tuple[Profile, int], Compiler] = {}
_shared_lock = threading.Lock()


def shared_compiler(profile: Profile, memory_bytes: int) -> Compiler:
    """One process-wide compiler per profile and limit (the gateway's uploads
    come from several request threads)."""
    with _shared_lock:
        compiler = _shared.get((profile, memory_bytes))
        if compiler is None:
            compiler = _shared[(profile, memory_bytes)] = Compiler(
                profile, memory_bytes=memory_bytes
            )
        return compiler
