"""Build the example modules with the ziglang package (no system toolchain needed).

    .venv/bin/python examples/build.py [--out-dir DIR]

Writes ``hash.wasm`` (exports ``run(input, difficulty)``, no imports) and
``hash_cmd.wasm`` (a WASI command). Without ``--out-dir`` they go where the
project expects them: ``hash.wasm`` at the repository root (the seed's curl
command uploads ``@hash.wasm``) and ``hash_cmd.wasm`` beside its source.

Both builds are stripped (``-s``) so that no debug info with absolute paths
ends up in the module; the result is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
REPO_ROOT = EXAMPLES.parent
HASH_DIR = EXAMPLES / "hash"


@dataclass(frozen=True)
class Target:
    source: Path
    output_name: str
    default_dir: Path
    flags: tuple[str, ...]


TARGETS: tuple[Target, ...] = (
    Target(
        source=HASH_DIR / "hash.c",
        output_name="hash.wasm",
        default_dir=REPO_ROOT,
        # Freestanding and without libc: the module imports nothing.
        flags=("-target", "wasm32-freestanding", "-nostdlib", "-Wl,--no-entry"),
    ),
    Target(
        source=HASH_DIR / "hash_cmd.c",
        output_name="hash_cmd.wasm",
        default_dir=HASH_DIR,
        flags=("-target", "wasm32-wasi"),
    ),
)


def build(target: Target, out_dir: Path | None) -> Path:
    output = (out_dir or target.default_dir) / target.output_name
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "ziglang",
        "cc",
        *target.flags,
        "-O2",
        "-s",
        "-o",
        str(output),
        str(target.source),
    ]
    # cwd fixed so that relative paths cannot leak into the build differently per caller.
    subprocess.run(command, check=True, cwd=HASH_DIR)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="write every module into DIR instead of the default places",
    )
    args = parser.parse_args(argv)
    out_dir = args.out_dir.resolve() if args.out_dir else None
    for target in TARGETS:
        try:
            output = build(target, out_dir)
        except subprocess.CalledProcessError as exc:
            print(f"build of {target.source.name} failed (exit {exc.returncode})", file=sys.stderr)
            return 1
        print(f"{target.source.relative_to(REPO_ROOT)} -> {output} ({output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
