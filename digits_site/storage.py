"""Files that are whole or absent: the storage every drawing and model artifact
goes through (``STORAGES["default"]``).

Django's file storage writes straight to the final name, so a write that fails
half-way (a full disk, a killed process) leaves a truncated file there, which a
later upload of the same drawing reused and a training run then crashed on.
Here a file is written under a temporary name in the same folder, flushed and
``fsync``-ed, then renamed over the final name (atomic on POSIX), and the folder
is synced so the rename survives a crash. A failure leaves nothing but, at
worst, a temporary file that ``manage.py check_storage`` clears.

A finished file is published with a hard link, which fails if the name is
taken, so two writers racing for one name never clobber each other (the
second gets another name, as with Django's own storage); with
``allow_overwrite`` it is renamed over the old one instead.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from django.core.files.storage import FileSystemStorage

TEMPORARY_PREFIX = ".partial-"


class AtomicFileSystemStorage(FileSystemStorage):
    def __init__(self, **kwargs):
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        super().__init__(**kwargs)

    def _save(self, name: str, content) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, mode=self.directory_permissions_mode, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in content.chunks():
                    handle.write(chunk if isinstance(chunk, bytes) else chunk.encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, self.file_permissions_mode)
            while True:
                try:
                    if self._allow_overwrite:
                        os.replace(temporary, full_path)
                    else:
                        os.link(temporary, full_path)  # EEXIST if the name is taken
                        os.unlink(temporary)
                    break
                except FileExistsError:
                    name = self.get_available_name(name)
                    full_path = self.path(name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _sync_directory(directory)
        return os.path.relpath(full_path, self.location).replace("\\", "/")


def _sync_directory(directory: str) -> None:
    """Make a rename durable; best effort where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
