"""Hostile WebAssembly modules (WAT) for the sandbox tests: each tries one way
to hurt the worker or escape, and must end only its own run."""

from __future__ import annotations

# Spins forever: stopped at its time limit by epoch interruption.
INFINITE_LOOP = """
(module (func (export "run") (param i64 i64) (result i64) (loop (br 0)) (i64.const 0)))
"""

# Grows memory until refused, then traps: a malloc that assumes success.
GROW_THEN_TRAP = """
(module (memory 1)
  (func (export "run") (param i32 i32) (result i32)
    (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
"""

# Grows memory one page at a time until refused; returns the pages it got.
GROW_UNTIL_REFUSED = """
(module (memory 1)
  (func (export "run") (param i32 i32) (result i32)
    (loop (br_if 0 (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (memory.size)))
"""

# Asks for 2 GiB of memory up front.
HUGE_MEMORY = """
(module (memory 32768)
  (func (export "run") (param i32 i32) (result i32) (i32.const 0)))
"""

# Asks for a table of 10 million entries up front.
HUGE_TABLE = """
(module (table 10000000 funcref)
  (func (export "run") (param i32 i32) (result i32) (i32.const 0)))
"""

# Recurses without end.
DEEP_RECURSION = """
(module (func $f (export "run") (param i64 i64) (result i64)
  (i64.add (call $f (local.get 0) (local.get 1)) (i64.const 1))))
"""

# Prints 64000-byte lines to stdout forever.
ENDLESS_STDOUT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 64000))
    (memory.fill (i32.const 16) (i32.const 121) (i32.const 64000))
    (loop (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br 0))))
"""

# Imports a host function no worker provides.
FOREIGN_IMPORT = """
(module
  (import "env" "spawn_shell" (func $evil (param i32) (result i32)))
  (func (export "run") (param i32 i32) (result i32) (call $evil (local.get 0))))
"""

# Imports a WASI-looking function that does not exist in preview1.
UNKNOWN_WASI_IMPORT = """
(module
  (import "wasi_snapshot_preview1" "sock_connect" (func $c (param i32 i32) (result i32)))
  (func (export "run") (param i32 i32) (result i32) (call $c (local.get 0) (local.get 1))))
"""

# A WASI command that looks for a way out and prints what it found:
#   prestat=<errno of fd_prestat_get(3)>  (8 = EBADF: no preopened directory)
#   open=<errno of path_open(3, "/etc/passwd")>
#   env=<number of environment variables>
#   accept=<errno of sock_accept(3)>       (no socket handed in)
#   argc=<number of arguments>             (the task id, input, difficulty)
WASI_PROBE = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $envsizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $argsizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "/etc/passwd")
  (data (i32.const 300) "prestat=")
  (data (i32.const 310) " open=")
  (data (i32.const 320) " env=")
  (data (i32.const 330) " accept=")
  (data (i32.const 340) " argc=")
  (data (i32.const 350) "\n")
  ;; write(len bytes at ptr) to stdout, iovec at 0..8, nwritten at 8
  (func $out (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  ;; print a number 0..999 in decimal (three digits at most) via scratch at 400
  (func $num (param $n i32) (local $len i32)
    (if (i32.ge_u (local.get $n) (i32.const 100))
      (then
        (i32.store8 (i32.const 400)
          (i32.add (i32.const 48) (i32.div_u (local.get $n) (i32.const 100))))
        (local.set $len (i32.const 1))))
    (if (i32.ge_u (local.get $n) (i32.const 10))
      (then
        (i32.store8 (i32.add (i32.const 400) (local.get $len))
          (i32.add (i32.const 48)
            (i32.rem_u (i32.div_u (local.get $n) (i32.const 10)) (i32.const 10))))
        (local.set $len (i32.add (local.get $len) (i32.const 1)))))
    (i32.store8 (i32.add (i32.const 400) (local.get $len))
      (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
    (call $out (i32.const 400) (i32.add (local.get $len) (i32.const 1))))
  (func (export "_start")
    (call $out (i32.const 300) (i32.const 8))
    (call $num (call $prestat (i32.const 3) (i32.const 500)))
    (call $out (i32.const 310) (i32.const 6))
    ;; path_open(dirfd=3, lookupflags=0, path, len, oflags=0, rights, rights, fdflags=0, &fd)
    (call $num (call $open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 11)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 508)))
    (call $out (i32.const 320) (i32.const 5))
    (drop (call $envsizes (i32.const 512) (i32.const 516)))
    (call $num (i32.load (i32.const 512)))
    (call $out (i32.const 330) (i32.const 8))
    (call $num (call $accept (i32.const 3) (i32.const 0) (i32.const 520)))
    (call $out (i32.const 340) (i32.const 6))
    (drop (call $argsizes (i32.const 524) (i32.const 528)))
    (call $num (i32.load (i32.const 524)))
    (call $out (i32.const 350) (i32.const 1))))
"""


def leb(value: int) -> bytes:
    """An unsigned LEB128 integer, as the wasm binary format writes sizes."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def section(ident: int, payload: bytes) -> bytes:
    """A wasm module section: its id, its size, its payload."""
    return bytes([ident]) + leb(len(payload)) + payload


def many_functions(count: int) -> bytes:
    """A valid module of `count` empty functions beside a plain `run`:
    cheap to send, costly to compile (built as bytes: wat2wasm of a million
    functions is itself slow)."""

    # type 0: () -> (); type 1: (i32, i32) -> i32
    types = section(1, leb(2) + b"\x60\x00\x00" + b"\x60\x02\x7f\x7f\x01\x7f")
    functions = section(3, leb(count + 1) + b"\x01" + b"\x00" * count)
    exports = section(7, leb(1) + leb(3) + b"run" + b"\x00" + leb(0))
    run_body = b"\x00\x41\x00\x0b"  # no locals; i32.const 0; end
    empty_body = b"\x02\x00\x0b"  # size 2: no locals; end
    code = section(10, leb(count + 1) + leb(len(run_body)) + run_body + empty_body * count)
    return b"\x00asm\x01\x00\x00\x00" + types + functions + exports + code


# run(ms, _): one WASI poll_oneoff on a monotonic clock of `ms` milliseconds
# (userdata 7). Returns (errno << 16) | (events << 8) | first event's
# userdata: 0x0107 = 263 when the clock fired as it should. With ms =
# 3_600_000 it waits an hour inside one host call, where epoch interruption
# never looks.
SLEEP_MS_IN_RUN = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param i32 i32) (result i32) (local $errno i32)
    (i64.store (i32.const 0) (i64.const 7))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.mul (i64.extend_i32_u (local.get 0)) (i64.const 1000000)))
    (local.set $errno (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))
    (i32.or (i32.shl (local.get $errno) (i32.const 16))
      (i32.or (i32.shl (i32.load (i32.const 512)) (i32.const 8)) (i32.load8_u (i32.const 256))))))
"""

# A WASI command that sleeps an hour in poll_oneoff, then prints "woke".
SLEEP_AN_HOUR_IN_START = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 600) "woke\\n")
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (drop (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))
    (i32.store (i32.const 700) (i32.const 600))
    (i32.store (i32.const 704) (i32.const 5))
    (drop (call $write (i32.const 1) (i32.const 700) (i32.const 1) (i32.const 708)))))
"""

# run: poll_oneoff on stdin being readable (userdata 5) or an hour's clock
# (userdata 7). Stdin is empty, so readable (end of file) at once: returns
# 0x0105 = 261, in the format of SLEEP_MS_IN_RUN.
POLL_STDIN_OR_AN_HOUR = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param i32 i32) (result i32) (local $errno i32)
    (i64.store (i32.const 0) (i64.const 5))
    (i32.store8 (i32.const 8) (i32.const 1))
    (i64.store (i32.const 48) (i64.const 7))
    (i32.store (i32.const 64) (i32.const 1))
    (i64.store (i32.const 72) (i64.const 3600000000000))
    (local.set $errno (call $poll (i32.const 0) (i32.const 256) (i32.const 2) (i32.const 512)))
    (i32.or (i32.shl (local.get $errno) (i32.const 16))
      (i32.or (i32.shl (i32.load (i32.const 512)) (i32.const 8)) (i32.load8_u (i32.const 256))))))
"""

# A WASI command that reads stdin until end of file, then prints "eof":
# what a user's program waiting for input it never gets looks like.
READ_STDIN_UNTIL_EOF = """
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 600) "eof\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 512))
    (block $done (loop $more
      (br_if $done (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br_if $more (i32.load (i32.const 8)))))
    (i32.store (i32.const 700) (i32.const 600))
    (i32.store (i32.const 704) (i32.const 4))
    (drop (call $write (i32.const 1) (i32.const 700) (i32.const 1) (i32.const 708)))))
"""

# Prints 64000-byte lines to stderr forever.
ENDLESS_STDERR = ENDLESS_STDOUT.replace("(call $write (i32.const 1)", "(call $write (i32.const 2)")

# Prints 64000 bytes that are not UTF-8 (0xff), then exits 0: decoded with
# replacement characters each byte becomes three, so only a cap in bytes
# keeps the result within bounds.
INVALID_UTF8_STDOUT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 64000))
    (memory.fill (i32.const 16) (i32.const 255) (i32.const 64000))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def large_functions(count: int, body_ops: int) -> bytes:
    """A valid module of `count` functions of `body_ops` additions each
    beside a plain `run`: few functions, yet costly to compile."""

    types = section(1, leb(2) + b"\x60\x00\x01\x7f" + b"\x60\x02\x7f\x7f\x01\x7f")
    functions = section(3, leb(count + 1) + b"\x01" + b"\x00" * count)
    exports = section(7, leb(1) + leb(3) + b"run" + b"\x00" + leb(0))
    run_body = b"\x00\x41\x00\x0b"  # no locals; i32.const 0; end
    # no locals; i32.const 1, then (i32.const 1; i32.add) body_ops times; end
    ops = b"\x00\x41\x01" + b"\x41\x01\x6a" * body_ops + b"\x0b"
    body = leb(len(ops)) + ops
    code = section(10, leb(count + 1) + leb(len(run_body)) + run_body + body * count)
    return b"\x00asm\x01\x00\x00\x00" + types + functions + exports + code
