"""The Cap'n Proto schemas, loaded once for the whole project."""

from pathlib import Path

import capnp

SCHEMA_DIR = Path(__file__).resolve().parent

capnp.remove_import_hook()

worker = capnp.load(str(SCHEMA_DIR / "worker.capnp"), imports=[str(SCHEMA_DIR)])
channel = capnp.load(str(SCHEMA_DIR / "channel.capnp"), imports=[str(SCHEMA_DIR)])
host = capnp.load(str(SCHEMA_DIR / "host.capnp"), imports=[str(SCHEMA_DIR)])
boot = capnp.load(str(SCHEMA_DIR / "boot.capnp"), imports=[str(SCHEMA_DIR)])
