"""MediaFileStore: media content on disk, addressed by its SHA-256. Files: <root>/ab/cd/<sha256>.

Identical content is stored once. A file is written under <root>/tmp, flushed to disk and only
then renamed to its name, so a file under its name is always complete; a crash leaves at most
a stray temporary file. Nothing here blocks the event loop: disk work runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ContentTooLarge(Exception):
    """The content went past the size it was allowed."""


@dataclass(frozen=True, slots=True)
class StoredContent:
    sha256: str
    length: int


class MediaFileStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self._root / sha256[0:2] / sha256[2:4] / sha256

    async def write_stream(self, chunks: AsyncIterable[bytes], max_length: int) -> StoredContent:
        """Store content arriving in chunks; ContentTooLarge once it passes `max_length` bytes
        (nothing is kept then)."""
        temp_path, file = await asyncio.to_thread(self._open_temp)
        digest = hashlib.sha256()
        length = 0
        try:
            async for chunk in chunks:
                length += len(chunk)
                if length > max_length:
                    raise ContentTooLarge()
                await asyncio.to_thread(_write_and_hash, file, digest, chunk)
            return await asyncio.to_thread(self._commit, temp_path, file, digest.hexdigest(), length)
        except BaseException:
            # Also on cancellation (the client went away): a short, local clean-up.
            file.close()
            with contextlib.suppress(OSError):
                temp_path.unlink()
            raise

    async def write_bytes(self, data: bytes) -> StoredContent:
        """Store content held in memory (a thumbnail, a fetched preview image)."""

        def write() -> StoredContent:
            temp_path, file = self._open_temp()
            try:
                file.write(data)
                return self._commit(temp_path, file, hashlib.sha256(data).hexdigest(), len(data))
            except BaseException:
                file.close()
                with contextlib.suppress(OSError):
                    temp_path.unlink()
                raise

        return await asyncio.to_thread(write)

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path_of(sha256).is_file)

    async def delete(self, sha256s: list[str]) -> None:
        """Remove these files (those already gone are skipped)."""
        def unlink_all() -> None:
            for sha256 in sha256s:
                self.path_of(sha256).unlink(missing_ok=True)

        if sha256s:
            await asyncio.to_thread(unlink_all)

    def _open_temp(self) -> tuple[Path, BinaryIO]:
        temp_dir = self._root / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        temp_path = temp_dir / f"upload-{secrets.token_hex(12)}"
        return temp_path, temp_path.open("xb")

    def _commit(self, temp_path: Path, file: BinaryIO, sha256: str, length: int) -> StoredContent:
        """Flush the temporary file to disk and give it its name (or drop it: already stored)."""
        file.flush()
        os.fsync(file.fileno())
        file.close()
        final = self.path_of(sha256)
        if final.is_file():
            temp_path.unlink()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp_path, final)
        return StoredContent(sha256, length)


def _write_and_hash(file: BinaryIO, digest, chunk: bytes) -> None:
    file.write(chunk)
    digest.update(chunk)
