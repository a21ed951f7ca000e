"""Files only the server's user may read: keys, tokens, the database, mail written to disk.

Everything is created private from its first byte (a ``chmod`` after writing leaves a
window), without touching the process umask: the umask is process-global, so changing it
around one ``open`` would also change what every other thread creates meanwhile.

Folders are made 0700 only when we make them. A folder that already exists was chosen by
the user (``AWAITHUMANS_DATABASE_URL=sqlite:///srv/data/app.db``) and may be shared on
purpose: it is never chmod-ed behind their back; ``awaithumans doctor`` points it out.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and any missing parents, each 0700; existing ones are left alone.

    (``Path.mkdir(parents=True, mode=...)`` gives the mode to the last folder only.)
    """
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # made by another process meanwhile: theirs, as it is
        # mkdir's mode passes through the umask, which may only take bits away; a umask
        # such as 0o277 would leave us a folder we cannot write in.
        if stat.S_IMODE(folder.stat().st_mode) != PRIVATE_DIR:
            folder.chmod(PRIVATE_DIR)


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty and 0600 if it does not exist; True if we created it.

    An existing file keeps its mode (see :func:`tighten`). SQLite creates a database's
    ``-wal`` and ``-shm`` files with the database file's own mode, so a database created
    here first keeps all three private.
    """
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, 0600 from the first byte.

    Written to a private temporary file beside it and renamed over it: a reader never sees
    half a file, and a file that existed with a looser mode is replaced, not rewritten.
    """
    make_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp makes it 0600
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tighten(paths: Iterable[Path]) -> None:
    """Make our own files 0600 (and folders 0700) where they are looser; missing ones are
    skipped. Only for paths the server owns, such as the dev folder's files."""
    for path in paths:
        try:
            found = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(found.st_mode):
            continue  # chmod would follow the link to a file that may not be ours
        wanted = PRIVATE_DIR if stat.S_ISDIR(found.st_mode) else PRIVATE_FILE
        if stat.S_IMODE(found.st_mode) & ~wanted:
            path.chmod(wanted)


def open_to_others(path: Path) -> bool:
    """Whether users other than the owner get any access to ``path`` (False if missing)."""
    try:
        return bool(path.stat().st_mode & 0o077)
    except FileNotFoundError:
        return False


def sqlite_files(database: Path) -> list[Path]:
    """A SQLite database and the files SQLite keeps beside it."""
    return [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
