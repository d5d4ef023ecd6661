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
