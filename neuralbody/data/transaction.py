"""Transactions on a capture folder: a command's changes appear all at once, or not at all.

A command that changes a capture (``fit``, ``detect``, ``refine-cameras``, ``calibrate-colour``,
``import``) opens one transaction with :func:`begin`, writes every new or changed file into the
staging folder inside the capture (:meth:`Transaction.stage`:
``.neuralbody-txn/files/<path relative to the capture>``) and names the paths it removes
(:meth:`Transaction.delete`). Nothing in the capture itself changes until the commit:

1. the staged files are synced to disk;
2. the commit record ``.neuralbody-txn/commit.json`` (the files and the deletions) is written
   with :func:`neuralbody.io.atomic.atomic_write_text`: from this moment the transaction has
   taken effect;
3. each deleted path is moved into ``.neuralbody-txn/trash/<i>``, then the marker
   ``.neuralbody-txn/deleted`` is written;
4. each staged file is moved into place with ``os.replace`` (atomic per file; folders are made);
5. the record is removed, then the staging folder (trash and all).

A process killed before step 2 leaves the capture as it was, plus a staging folder; killed after
it, the capture is half-way to the new state. (The staged files are synced before the record is
written, so after a power cut too a record never names unwritten data; the renames themselves are
left to the file system's journal.) :func:`recover` finishes the job either way: it
discards an uncommitted staging folder and rolls a committed transaction forward (steps 3-5,
each of them safe to repeat), so once recovered a capture is in its old or its new state.

Who recovers: :func:`begin` (every writing command, before it stages anything) and
:func:`~neuralbody.data.capture.read_capture` (every reader, when it opens a capture). For a
reader this costs one ``stat`` when there is nothing to recover.

One writer at a time: :func:`begin` takes an exclusive advisory lock (``flock``) on the capture
folder and holds it to the end of the transaction; a second writer gets :class:`CaptureBusy`.
The kernel drops the lock when its process dies, so a killed writer never blocks the next one.
:func:`recover` only touches a staging folder whose lock it can take: a live writer's staging is
left alone (a reader then sees the old state), and while a live writer moves committed files a
reader waits for it (at most ``wait_s``). Readers that load files lazily long after opening
(e.g. images during training) are not protected against a later commit: run writing commands
when nothing trains on the capture. Without ``fcntl`` (Windows) there is no lock.

Test only: the environment variable ``NEURALBODY_TEST_TXN_KILL`` makes a committing process
kill itself (SIGKILL) at a chosen point, for the kill tests: ``before-commit`` (everything
staged, no record yet) or an integer ``K`` (after the record and ``K`` moves, 0: before the
deletions; ``K`` at least the number of files: after every move, before the clean-up). Never set
it otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from neuralbody.io.atomic import atomic_write_text, remove_stale_temporaries

log = logging.getLogger(__name__)

TXN_DIR = ".neuralbody-txn"
FILES_DIR = "files"
TRASH_DIR = "trash"
RECORD = "commit.json"
DELETED_MARK = "deleted"
RECORD_FORMAT = "neuralbody-transaction"
KILL_ENV = "NEURALBODY_TEST_TXN_KILL"
STALE_TARGETS = ("annots.npy", "neuralbody.json")  # what older versions wrote atomically in a capture folder
READER_WAIT_S = 60.0  # how long a reader waits for a live writer to finish moving committed files


class CaptureBusy(ValueError):
    """Another process holds the capture's transaction lock (a ValueError: the CLI reports it in one line)."""


def relative_path(path: str | os.PathLike) -> str:
    """``path`` as a clean relative POSIX path inside a capture (ValueError when it leaves it).

    Rejects absolute paths, ``..``, empty paths and anything under the staging folder.
    """
    text = os.fspath(path).replace("\\", "/")
    pure = PurePosixPath(text)
    parts = [p for p in pure.parts if p not in ("", ".")]
    if pure.is_absolute() or not parts or ".." in parts or parts[0] == TXN_DIR:
        raise ValueError(f"transaction: {text!r} must be a path inside the capture (relative, no '..', not {TXN_DIR}/)")
    return "/".join(parts)


# -- the lock ---------------------------------------------------------------------------------
class _Lock:
    """An exclusive ``flock`` on a folder, or nothing where the platform has none."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    @classmethod
    def try_acquire(cls, root: Path) -> _Lock | None:
        """The lock, or None while another open file holds it."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks on folders
            return cls(None)
        fd = os.open(root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                return None
            log.debug("no lock on %s (%s): proceeding without one", root, error)  # e.g. some network file systems
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


# -- the transaction --------------------------------------------------------------------------
class Transaction:
    """The staged changes of one command to one capture; made by :func:`begin`.

    Attributes:
        root: the capture folder.
        command: the command's name (in the commit record, for the record's reader).
    """

    def __init__(self, root: Path, command: str) -> None:
        self.root = root
        self.command = command
        self.staging = root / TXN_DIR
        self._files: dict[str, Path] = {}
        self._deletions: list[str] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the transaction was committed (its record written) or aborted."""
        return self._closed

    @property
    def files(self) -> list[str]:
        """The staged paths, relative to the capture, in staging order."""
        return list(self._files)

    @property
    def deletions(self) -> list[str]:
        """The paths to delete, relative to the capture."""
        return list(self._deletions)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"transaction on {self.root}: already committed or aborted")

    def stage(self, path: str | os.PathLike) -> Path:
        """Where to write the new content of ``path`` (relative to the capture); folders are made.

        Staging a path twice returns the same file (the last content wins).
        """
        self._check_open()
        rel = relative_path(path)
        staged = self.staging / FILES_DIR / rel
        staged.parent.mkdir(parents=True, exist_ok=True)
        self._files[rel] = staged
        return staged

    def write_bytes(self, path: str | os.PathLike, data: bytes) -> Path:
        """Stage ``data`` as the new content of ``path``; returns the staged file."""
        staged = self.stage(path)
        staged.write_bytes(data)
        return staged

    def write_text(self, path: str | os.PathLike, text: str) -> Path:
        """Stage UTF-8 ``text`` as the new content of ``path``; returns the staged file."""
        return self.write_bytes(path, text.encode("utf-8"))

    def copy(self, source: str | os.PathLike, path: str | os.PathLike) -> Path:
        """Stage a copy of the file ``source`` (anywhere) as the new content of ``path``."""
        staged = self.stage(path)
        shutil.copy2(source, staged)
        return staged

    def delete(self, path: str | os.PathLike) -> None:
        """Delete the file or folder ``path`` (relative to the capture) at the commit, before the
        staged files move in (so a folder can be replaced by staging its new files); missing is fine."""
        self._check_open()
        rel = relative_path(path)
        if rel not in self._deletions:
            self._deletions.append(rel)

    def current(self, path: str | os.PathLike) -> Path:
        """The file to read for ``path`` as this transaction would leave it: the staged one, else the capture's."""
        rel = relative_path(path)
        return self._files.get(rel, self.root / rel)

    def is_staged(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` (relative to the capture) has new content in this transaction."""
        return relative_path(path) in self._files

    def commit(self) -> None:
        """Make the staged changes take effect (see the module docstring); then the transaction is closed."""
        self._check_open()
        files = list(self._files)
        _check_targets(self.root, files, self._deletions)
        for rel in files:
            _fsync(self._files[rel])
        _checkpoint("before-commit", 0, len(files))
        record = {"format": RECORD_FORMAT, "version": 1, "command": self.command, "files": files,
                  "delete": list(self._deletions)}  # fmt: skip
        atomic_write_text(self.staging / RECORD, json.dumps(record, indent=1) + "\n")
        self._closed = True
        _checkpoint("moved", 0, len(files))
        _apply(self.root, record)
        _finish(self.root)
        log.debug("%s: committed %d files, %d deletions to %s", self.command, len(files), len(self._deletions),
                  self.root)  # fmt: skip

    def abort(self) -> None:
        """Discard the staged changes (the capture is left as it was)."""
        if self._closed:
            return
        self._closed = True
        shutil.rmtree(self.staging, ignore_errors=True)


@contextlib.contextmanager
def begin(root: str | os.PathLike, command: str) -> Iterator[Transaction]:
    """Open a transaction on the capture folder ``root`` (it must exist); commit on a clean exit.

    Takes the capture's lock (:class:`CaptureBusy` when another process holds it), recovers an
    earlier killed transaction (:func:`recover`), removes the stale temporaries of killed atomic
    writes of ``annots.npy`` and ``neuralbody.json``, and yields the :class:`Transaction`. An exception inside the block
    discards the staged changes and propagates.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"transaction: capture folder {root} not found")
    lock = _Lock.try_acquire(root)
    if lock is None:
        raise CaptureBusy(f"{root}: another neuralbody command is writing to this capture; wait for it to finish")
    try:
        _recover_locked(root)
        for name in STALE_TARGETS:
            remove_stale_temporaries(root, name)
        (root / TXN_DIR / FILES_DIR).mkdir(parents=True)
        transaction = Transaction(root, command)
        try:
            yield transaction
            if not transaction.closed:
                transaction.commit()
        except BaseException:
            transaction.abort()  # nothing to undo once the record is written: recovery rolls it forward
            raise
    finally:
        lock.release()


# -- recovery ---------------------------------------------------------------------------------
def recover(root: str | os.PathLike, *, wait_s: float = READER_WAIT_S) -> str:
    """Finish what a killed transaction left in ``root``; safe to call any time, idempotent.

    Returns ``"clean"`` (nothing to do), ``"discarded"`` (an uncommitted transaction: the capture
    is in its old state, its staging folder removed where the file system allows), ``"rolled
    forward"`` (a committed one: now in its new state) or ``"in progress"`` (a live writer is
    staging; the capture is in its old state). Waits up to
    ``wait_s`` seconds for a live writer that is moving committed files; raises OSError naming
    the fix when a committed transaction cannot be finished (e.g. a read-only copy).
    """
    root = Path(root)
    staging = root / TXN_DIR
    if not staging.exists():
        return "clean"
    deadline = time.monotonic() + wait_s
    while (lock := _Lock.try_acquire(root)) is None:
        if not (staging / RECORD).is_file():
            return "in progress"
        if time.monotonic() > deadline:
            raise OSError(f"{root}: a neuralbody command has been committing changes for over {wait_s:.0f} s; "
                          "wait for it, or stop it and run neuralbody info on the capture")  # fmt: skip
        time.sleep(0.05)
    try:
        return _recover_locked(root)
    finally:
        lock.release()


def _recover_locked(root: Path) -> str:
    staging = root / TXN_DIR
    if not staging.exists():
        return "clean"
    record_path = staging / RECORD
    if not record_path.is_file():
        try:
            shutil.rmtree(staging)
        except OSError as error:  # e.g. a read-only copy: the capture itself is in its old state all the same
            log.warning("%s: cannot remove the unfinished changes of a killed command in %s (%s)", root, staging, error)
            return "discarded"
        log.warning("%s: discarded the unfinished changes of a killed neuralbody command (the capture is as before it)",
                    root)  # fmt: skip
        return "discarded"
    record = _read_record(record_path)
    try:
        _apply(root, record)
        _finish(root)
    except OSError as error:
        raise OSError(f"{root}: cannot finish the committed changes of a killed neuralbody {record['command']} "
                      f"({error}); run neuralbody info on the capture with write access to it") from error  # fmt: skip
    log.warning("%s: finished the committed changes of a killed neuralbody %s", root, record["command"])
    return "rolled forward"


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        valid = record.get("format") == RECORD_FORMAT and isinstance(record.get("command"), str)
        files, deletions = record.get("files"), record.get("delete")
        valid = valid and isinstance(files, list) and isinstance(deletions, list)
        if valid:
            record["files"] = [relative_path(p) for p in files]
            record["delete"] = [relative_path(p) for p in deletions]
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: not a neuralbody commit record ({error}); "
                         f"move the folder {path.parent} away") from error
    if not valid:
        raise ValueError(f"{path}: not a neuralbody commit record; move the folder {path.parent} away")
    return record


def _apply(root: Path, record: dict) -> None:
    """Steps 3-4 of the commit; every step is skipped when an earlier run did it."""
    staging = root / TXN_DIR
    if not (staging / DELETED_MARK).is_file():
        trash = staging / TRASH_DIR
        trash.mkdir(exist_ok=True)
        for index, rel in enumerate(record["delete"]):
            target, binned = root / rel, trash / str(index)
            if not binned.exists() and (target.exists() or target.is_symlink()):
                os.replace(target, binned)
        atomic_write_text(staging / DELETED_MARK, "")
    total = len(record["files"])
    for moved, rel in enumerate(record["files"], 1):
        source = staging / FILES_DIR / rel
        if source.is_file():  # else an earlier run moved it
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        _checkpoint("moved", moved, total)


def _finish(root: Path) -> None:
    """Step 5: without the record, a leftover staging folder is plain garbage (discarded by :func:`recover`)."""
    staging = root / TXN_DIR
    (staging / RECORD).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)


def _check_targets(root: Path, files: list[str], deletions: list[str]) -> None:
    """Before the record: every staged file must be able to move into place (else roll-forward would fail)."""

    def deleted(rel: str) -> bool:
        return any(rel == d or rel.startswith(d + "/") for d in deletions)

    checked: set[str] = set()
    for rel in files:
        if (root / rel).is_dir() and not deleted(rel):
            raise ValueError(f"transaction: {root / rel} is a folder; it cannot be replaced by a file")
        parent = str(PurePosixPath(rel).parent)
        while parent != "." and parent not in checked:
            checked.add(parent)
            path = root / parent
            if (path.exists() or path.is_symlink()) and not path.is_dir() and not deleted(parent):
                raise ValueError(f"transaction: {path} is a file; {rel} cannot be written inside it")
            parent = str(PurePosixPath(parent).parent)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _checkpoint(stage: str, count: int, total: int) -> None:
    """Test-only hook (see the module docstring): SIGKILL this process where ``NEURALBODY_TEST_TXN_KILL`` says.

    ``stage`` is ``"before-commit"`` or ``"moved"`` (``count`` of ``total`` files moved).
    """
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    if stage == "before-commit":
        hit = wanted == "before-commit"
    else:
        hit = wanted.isdigit() and (int(wanted) == count or (count == total and int(wanted) >= total))
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
