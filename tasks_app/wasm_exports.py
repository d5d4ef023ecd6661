"""The names a WebAssembly module exports, read from its export section
without compiling or instantiating it (pure: bytes in, names out).

Used when a module is stored (`Module.exports`) and by migration 0006 to
fill the rows stored before. A module whose sections cannot be read gives
no names: the module check (tasks_app.modules) is what refuses bad bytes.
"""

from __future__ import annotations

_EXPORT_SECTION = 7
_HEADER = 8  # magic and version
MAX_NAMES = 10_000  # a module may export more; the row keeps this many


def export_names(wasm: bytes) -> list[str]:
    """The module's export names in their order (at most MAX_NAMES), or
    [] where the export section cannot be read."""
    try:
        return _names(memoryview(wasm))
    except (IndexError, ValueError, UnicodeDecodeError):
        return []


def _names(data: memoryview) -> list[str]:
    offset = _HEADER
    while offset < len(data):
        section = data[offset]
        size, offset = _leb128(data, offset + 1)
        end = offset + size
        if end > len(data):
            raise ValueError("section past the end")
        if section == _EXPORT_SECTION:
            return _section_names(data[offset:end])
        offset = end
    return []


def _section_names(section: memoryview) -> list[str]:
    count, offset = _leb128(section, 0)
    names: list[str] = []
    for _ in range(min(count, MAX_NAMES)):
        length, offset = _leb128(section, offset)
        if offset + length > len(section):
            raise ValueError("name past the end")
        names.append(bytes(section[offset : offset + length]).decode("utf-8"))
        offset += length + 1  # the export's kind: one byte
        _, offset = _leb128(section, offset)  # its index
    return names


def _leb128(data: memoryview, offset: int) -> tuple[int, int]:
    """An unsigned LEB128 of at most 32 bits at `offset`, and the offset after it."""
    value = 0
    for shift in range(0, 35, 7):
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
    raise ValueError("LEB128 too long")
