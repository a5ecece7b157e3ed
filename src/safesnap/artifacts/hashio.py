"""Pass-through byte streams that hash and count what flows through them.

Used by artifacts.py to compute the stored file's sha256 while the compressor writes it and the
content's sha256 while a reader decompresses it, in the same single pass.
"""

from __future__ import annotations

import hashlib
import io
from typing import IO, Any

from safesnap.artifacts.codecs import read_chunk


class HashingWriter(io.RawIOBase):
    """Pass-through writer that hashes and counts what reaches the stored file."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._raw.write(view)
        self.hash.update(view)
        self.count += len(view)
        return len(view)

    def flush(self) -> None:
        if not self._raw.closed:  # also called from close() at garbage collection
            self._raw.flush()


class HashingReader(io.RawIOBase):
    """Pass-through reader that hashes and counts every byte read."""

    def __init__(self, raw: IO[bytes], *, decode: bool = False) -> None:
        self._raw = raw
        self._decode = decode
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = read_chunk(self._raw, len(view)) if self._decode else self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        self.hash.update(data)
        self.count += n
        return n


class SourceFailed(Exception):
    """Carries an OSError raised by the *source* past the destination's OSError handler."""

    def __init__(self, original: OSError) -> None:
        super().__init__(str(original))
        self.original = original


class GuardedSource(io.RawIOBase):
    """Wraps the source so its OSErrors arrive as SourceFailed (see artifacts.write_artifact)."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._source.read(size) or b""
        except OSError as exc:
            raise SourceFailed(exc) from exc
