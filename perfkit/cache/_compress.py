"""Entry encoding: serialisation + zstd above a threshold + the one-byte header.

``zstandard.ZstdCompressor`` / ``ZstdDecompressor`` objects are reused rather
than built per call (building one costs about 20 us), but they are not
thread-safe, so each thread gets its own pair through ``threading.local``.
Measured (benchmarks/cache.md, 2 KB payload): the per-thread lookup costs the
same as an uncontended lock (about 6 us per compression either way) and keeps
two threads compressing in parallel (python-zstandard releases the GIL), where
one shared pair behind a lock serialises them. Each thread rebuilds its
compressor lazily when ``level`` changes; decompressors do not depend on it.
"""

from __future__ import annotations

import threading
from typing import Any

import zstandard

from perfkit.cache._serialize import (
    COMPRESSED,
    HEADER_BASE,
    MAX_FORMAT,
    RAW_HEADERS,
    STR,
    ZSTD_HEADERS,
    ForeignEntry,
    deserialize,
    serialize,
)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Default cap on a decompressed entry; a Cache sets ``max_size`` to the largest entry it
# would write itself, so a planted frame that claims more (a zstd bomb) is refused
# from its header, before any memory is spent on it.
MAX_DECOMPRESSED = 1 << 30


class Codec:
    """Turns values into stored entries and back. Thread-safe."""

    __slots__ = ("_local", "allow_pickle", "level", "max_size", "threshold")

    def __init__(self, level: int, threshold: int, allow_pickle: bool,
                 max_size: int = MAX_DECOMPRESSED) -> None:
        self._local = threading.local()
        self.max_size = max_size
        self.level = level
        self.threshold = threshold
        self.allow_pickle = allow_pickle

    # -- contexts -----------------------------------------------------------------------
    def _compressor(self) -> zstandard.ZstdCompressor:
        loc = self._local
        level = self.level
        c = getattr(loc, "c", None)
        if c is None or loc.level != level:
            c = loc.c = zstandard.ZstdCompressor(level=level, write_content_size=True)
            loc.level = level
        return c

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        d = getattr(self._local, "d", None)
        if d is None:
            d = self._local.d = zstandard.ZstdDecompressor()
        return d

    # -- encode / decode ----------------------------------------------------------------
    def encode(self, value: Any) -> tuple[bytes, int]:
        """Return ``(entry, raw_size)``; raw_size is the serialised size before compression."""
        if type(value) is str:
            payload = value.encode("utf-8", "surrogatepass")
            fmt = STR
        else:
            fmt, payload = serialize(value, self.allow_pickle)
        n = len(payload)
        if n >= self.threshold and n > 0:
            z = self._compressor().compress(payload)
            if len(z) < n:
                return ZSTD_HEADERS[fmt] + z, n + 1
        return RAW_HEADERS[fmt] + payload, n + 1

    def decode(self, entry: bytes) -> Any:
        """Inverse of :meth:`encode`; ForeignEntry for anything we did not write."""
        if not entry:
            raise ForeignEntry("empty entry")
        h = entry[0]
        if h == 0xA1:  # raw str, the common case
            try:
                return entry[1:].decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise ForeignEntry(str(exc)) from exc
        fmt = h & 0x0F
        if h & 0xE0 != HEADER_BASE or fmt > MAX_FORMAT:
            raise ForeignEntry(f"unknown header byte 0x{h:02x}")
        if h & COMPRESSED:
            if entry[1:5] != ZSTD_MAGIC:
                raise ForeignEntry("compressed flag without a zstd frame")
            try:
                size = zstandard.frame_content_size(entry[1:])
                if size < 0:
                    raise ForeignEntry("zstd frame without a content size (perfkit writes one)")
                if size > self.max_size:
                    raise ForeignEntry(f"zstd frame claims {size} bytes decompressed, over the "
                                       f"cache's largest entry ({self.max_size} bytes)")
                payload = self._decompressor().decompress(entry[1:], max_output_size=size)
            except zstandard.ZstdError as exc:
                raise ForeignEntry(f"corrupt zstd frame: {exc}") from exc
            return deserialize(fmt, payload, self.allow_pickle)
        return deserialize(fmt, entry[1:], self.allow_pickle)
