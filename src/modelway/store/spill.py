"""A local JSON-lines file that holds usage records while the store cannot take them.

Several worker processes may share one file: appends and the replay hold an exclusive
``flock``; an appender that finds the file unlinked under it (a replay just finished)
opens the new one instead. All methods block: call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import msgspec

from modelway.store.records import UsageRecord

log = logging.getLogger("modelway.store")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(UsageRecord)


class SpillFile:
    """Append records durably; later hand them back in batches and remove the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def append(self, records: Iterable[UsageRecord]) -> None:
        """Append records as JSON lines and fsync them before returning."""
        lines = b"".join(_encoder.encode(record) + b"\n" for record in records)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                if os.fstat(descriptor).st_nlink == 0:
                    continue  # replayed and removed while we waited for the lock
                _write_all(descriptor, lines)
                os.fsync(descriptor)
                return
            finally:
                os.close(descriptor)  # closing releases the lock

    def claim(self) -> SpillReplay | None:
        """The file locked for replay, or None if it is absent or another process holds it."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        if os.fstat(handle.fileno()).st_nlink == 0:
            handle.close()  # another process replayed it between our open and our lock
            return None
        return SpillReplay(self.path, handle)


class SpillReplay:
    """A claimed spill file: read it in batches, then ``remove()``; ``close()`` in any case."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self._path = path
        self._handle = handle

    def read_batch(self, size: int) -> list[UsageRecord]:
        """Up to ``size`` records; an empty list at the end of the file."""
        records: list[UsageRecord] = []
        while len(records) < size:
            lines = list(itertools.islice(self._handle, size - len(records)))
            if not lines:
                break
            for line in lines:
                try:
                    records.append(_decoder.decode(line))
                except msgspec.DecodeError:
                    # Only a crash in the middle of an append leaves a partial line.
                    log.warning("skipping an unreadable line in the usage spill file")
        return records

    def remove(self) -> None:
        """Delete the file; every record in it is stored."""
        self._path.unlink(missing_ok=True)

    def close(self) -> None:
        self._handle.close()


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
