"""Reading ahead: the next batch is read and prepared while the database writes the current one."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Generator, Iterator

from dbsh.errors import DbshError
from dbsh.inputs import Batch


# -- reading ahead ------------------------------------------------------------------------------
class _ReadFailed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(batches: Iterator[Batch], prepare: Callable[[Batch], None], *,
               apart: bool = False) -> Generator[Batch, None, None]:
    """The batches, read, parsed and prepared (``prepare``: the destination's prepare_batch) ahead of
    the writer: while the database server works on one batch, the next one is made ready. With
    ``apart`` (the destination's prepares_apart, where CAN_FORK), by a forked process, which shares
    no GIL with the writer; otherwise by a thread. A reading error reaches the writer in its place
    in the stream."""
    if apart:
        return _read_ahead_forked(batches, prepare)
    return _read_ahead_thread(batches, prepare)


# fork() without exec() is sound on Linux; macOS's system libraries may not survive it, Windows has none
CAN_FORK = sys.platform.startswith("linux")


_FRAME = "<Q"   # each batch handed over: its pickle's length, then the pickle


def _read_ahead_forked(batches: Iterator[Batch], prepare: Callable[[Batch], None]) -> Generator[Batch, None, None]:
    """read_ahead in a forked child, which reads and prepares each batch and hands it over, pickled,
    through a pipe (jsonl documents as their lines: Batch.__getstate__). The child ignores Ctrl-C,
    which the writer handles; it ends when the writer stops reading (it is killed) or goes away
    (its next write fails)."""
    import fcntl
    import pickle
    import struct

    frame = struct.Struct(_FRAME)
    r, w = os.pipe()
    try:   # room for a batch or two (a pipe holds 64 KiB by default): the child gets on with the next
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (OSError, AttributeError):
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:   # no process to be had (EAGAIN, ENOMEM): a thread, then
        os.close(r)
        os.close(w)
        yield from _read_ahead_thread(batches, prepare)
        return
    if pid == 0:   # the child: never returns
        try:
            os.close(r)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            with open(w, "wb") as out:
                def send(message) -> None:
                    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                    out.write(frame.pack(len(data)))
                    out.write(data)
                    out.flush()

                try:
                    for batch in batches:
                        prepare(batch)
                        send(("batch", batch))
                    send(("end", None))
                except BrokenPipeError:
                    pass
                except BaseException as e:  # noqa: BLE001 - handed to the writer, which raises it
                    import traceback

                    try:   # the error itself if it pickles (and unpickles), else its text
                        pickled: bytes | None = pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)
                    except Exception:  # noqa: BLE001
                        pickled = None
                    try:
                        send(("error", (pickled, f"{type(e).__name__}: {e}", traceback.format_exc())))
                    except BrokenPipeError:
                        pass
        finally:
            os._exit(0)
    os.close(w)
    try:
        with open(r, "rb") as source:
            while True:
                head = source.read(frame.size)
                size = frame.unpack(head)[0] if len(head) == frame.size else 0
                data = source.read(size)
                if not size or len(data) < size:   # it ended without saying so (killed, say)
                    raise DbshError("the process reading the input ended unexpectedly")
                kind, item = pickle.loads(data)
                if kind == "end":
                    return
                if kind == "error":
                    sent, text, where = item
                    try:
                        error = pickle.loads(sent)
                    except Exception:  # noqa: BLE001 - (one whose class takes other arguments)
                        error = DbshError(text)
                    error.add_note(f"raised in the process reading ahead:\n{where}")   # (what --debug shows)
                    raise error
                yield item
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):   # (reaped by someone else's SIGCHLD handling)
            pass


def _read_ahead_thread(batches: Iterator[Batch], prepare: Callable[[Batch], None],
                       depth: int = 2) -> Generator[Batch, None, None]:
    """read_ahead in a background thread, up to ``depth`` batches ahead (the writer waits on its
    socket without the GIL)."""
    import queue
    import threading

    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def work() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                prepare(batch)
                ready.put(batch)
            ready.put(end)
        except BaseException as e:  # noqa: BLE001 - handed to the writer, which raises it
            ready.put(_ReadFailed(e))

    thread = threading.Thread(target=work, name="dbsh-read-ahead", daemon=True)
    # the writer wakes from its socket waits needing the GIL back: by default the reading thread
    # keeps it up to 5 ms each time, the server idle meanwhile (0.25 ms: 5% less wall time here)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.00025))
    thread.start()
    try:
        while (item := ready.get()) is not end:
            if type(item) is _ReadFailed:
                raise item.error
            yield item
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        while thread.is_alive():   # unblock a reader waiting to hand over a batch, let it stop
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
