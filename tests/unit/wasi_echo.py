"""WASI commands that show what a run is given and print what text cannot
hold, written as WAT (the tests build them with wasmtime.wat2wasm).

ECHO prints its argv, one argument a line, then "--", then its whole
environment, one NAME=value a line, then "--", then its stdin byte for
byte; and "echo: done" on stderr. BINARY prints bytes that are not UTF-8
(`BINARY_BYTES`) and exits 0. `binary_flood(n)` prints n KiB of 0xff."""

from __future__ import annotations

_IMPORTS = """
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
"""

# Memory: 0 iovec, 8 count, 16/20 sizes, 64 "--\n", 80 "echo: done\n",
# 1024 pointers, 4096 argv strings, 32768 environment strings, 65536 stdin.
ECHO = (
    "(module"
    + _IMPORTS
    + r"""
  (memory (export "memory") 2)
  (data (i32.const 64) "--\n")
  (data (i32.const 80) "echo: done\n")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  ;; NUL-separated strings as lines
  (func $lines (param $ptr i32) (param $len i32) (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (if (i32.eqz (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $write (i32.const 1) (local.get $ptr) (local.get $len)))
  (func (export "_start") (local $n i32)
    (drop (call $args_sizes (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (call $lines (i32.const 4096) (i32.load (i32.const 20)))
    (call $write (i32.const 1) (i32.const 64) (i32.const 3))
    (drop (call $environ_sizes (i32.const 16) (i32.const 20)))
    (drop (call $environ_get (i32.const 1024) (i32.const 32768)))
    (call $lines (i32.const 32768) (i32.load (i32.const 20)))
    (call $write (i32.const 1) (i32.const 64) (i32.const 3))
    (block $eof (loop $more
      (i32.store (i32.const 0) (i32.const 65536))
      (i32.store (i32.const 4) (i32.const 65536))
      (br_if $eof (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $n (i32.load (i32.const 8)))
      (br_if $eof (i32.eqz (local.get $n)))
      (call $write (i32.const 1) (i32.const 65536) (local.get $n))
      (br $more)))
    (call $write (i32.const 2) (i32.const 80) (i32.const 11))))
"""
)

BINARY_BYTES = b"\xff\xfe\x00\x80bin\xc3"
BINARY = (
    "(module"
    + _IMPORTS
    + r"""
  (memory (export "memory") 1)
  (data (i32.const 16) "\ff\fe\00\80bin\c3")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""
)


def binary_flood(kib: int) -> str:
    """A command printing `kib` KiB of 0xff to stdout and 0xfe to stderr."""
    return (
        "(module"
        + _IMPORTS
        + f"""
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 1024))
    (memory.fill (i32.const 1024) (i32.const 255) (i32.const 1024))
    (memory.fill (i32.const 2048) (i32.const 254) (i32.const 1024))
    (i32.store (i32.const 8) (i32.const 2048))
    (i32.store (i32.const 12) (i32.const 1024))
    (loop
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
      (drop (call $fd_write (i32.const 2) (i32.const 8) (i32.const 1) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if 0 (i32.lt_u (local.get $i) (i32.const {kib}))))))
"""
    )


def echoed(argv: list[str], env: list[tuple[str, str]], stdin: bytes) -> bytes:
    """What ECHO prints on stdout when given these."""
    lines = "".join(f"{arg}\n" for arg in argv) + "--\n"
    lines += "".join(f"{name}={value}\n" for name, value in env) + "--\n"
    return lines.encode() + stdin
