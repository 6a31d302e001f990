"""Content-addressed blob storage under the data dir.

Blobs are named by their SHA-256 and written through a temporary file and
an atomic rename, so a crash or a full disk never leaves a half blob under
a real name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO


class Storage:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.tmp = self.root.parent / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def _commit(self, tmp_path: Path, sha256: str) -> str:
        dest = self.path(sha256)
        if dest.exists():
            tmp_path.unlink(missing_ok=True)
            return sha256
        dest.parent.mkdir(exist_ok=True)
        os.replace(tmp_path, dest)
        return sha256

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if self.exists(sha):
            return sha
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return self._commit(Path(name), sha)

    def put_file(self, src: Path, move: bool = False) -> str:
        h = hashlib.sha256()
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        sha = h.hexdigest()
        if self.exists(sha):
            if move:
                Path(src).unlink(missing_ok=True)
            return sha
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        os.close(fd)
        try:
            if move:
                shutil.move(str(src), name)
            else:
                shutil.copyfile(src, name)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return self._commit(Path(name), sha)

    def save_stream(self, stream: BinaryIO, limit: int) -> tuple[Path, str, int]:
        """Spool an upload to a temporary file; returns (path, sha256, size).

        Raises OverflowError past `limit` bytes; the caller removes the file.
        """
        h = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                while True:
                    chunk = stream.read(1 << 20)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        raise OverflowError(size)
                    h.update(chunk)
                    f.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), h.hexdigest(), size

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()


_storage: Storage | None = None


def configure(data_dir: Path) -> Storage:
    global _storage
    _storage = Storage(Path(data_dir) / "blobs")
    return _storage


def get() -> Storage:
    assert _storage is not None, "storage not configured"
    return _storage
