"""Process-level hooks, in one place: the exit flush, the fork reset and SIGTERM.

Nothing is installed at import. :func:`install` runs when the first sink is made, and it
registers, once per process (a forked child inherits them):

- an ``atexit`` hook that flushes every live sink, all exit budgets counted from the same
  moment. Loguru registers its own ``logger.remove`` at import; ours, registered later, runs
  first (atexit is last in, first out), so records that loguru's ``enqueue`` queue hands over
  afterwards still reach ``stop()`` with what is left of the budget;
- in a multiprocessing child (which leaves through ``os._exit``), a finalizer per sink that
  stops it at the child's exit (:func:`stop_at_child_exit`, at the sink's first record);
- one ``os.register_at_fork(after_in_child=...)`` hook that calls, in registration order,
  every live object that asked for it (:func:`on_fork_in_child`): sinks rebuild their engine,
  spools let go of the parent's files. Objects are held weakly; dead ones are forgotten;
- on POSIX, when a sink with ``handle_sigterm`` is made in the main thread while SIGTERM has
  its default action (checked once per process: a handler installed later wins), a SIGTERM
  handler and its watchdog (see :func:`_on_sigterm`, :func:`_watch`).

SIGTERM's default action kills the process without running atexit. The handler flushes every
live sink as the exit hook does, then restores the default action and sends the signal again,
so the process still dies by SIGTERM (what a supervisor expects). Invariants:

- one process-wide flush at a time (``_flush_lock``: exit hook, multiprocessing child exit,
  handler, watchdog);
- the handler never flushes while the interrupted main thread is inside the sink's code (it
  may hold a lock the flush needs): it steps back, and the watchdog calls it again every few
  milliseconds, or flushes from its own thread after :data:`HANDLER_GRACE`;
- a forked child never writes to its parent's wakeup pipe (it gets its own, or none);
- after SIGTERM the process ends within the flush budget plus :data:`HANDLER_GRACE` and
  :data:`WATCHDOG_SLACK`, even when the main thread never runs the handler (stuck in C code
  that releases the GIL): the watchdog thread, woken by the signal wakeup fd, flushes itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import NoReturn, Protocol

from ._diag import emit


class _Sink(Protocol):
    def exit_flush_started(self, deadline: float) -> None: ...
    def exit_flush(self, deadline: float) -> None: ...
    def shutdown_budget(self) -> float: ...
    def stop(self) -> None: ...


#: Seconds the watchdog lets the main thread take a SIGTERM before it flushes itself.
HANDLER_GRACE = 0.25
#: Seconds past the flush budget after which the watchdog ends the process whatever happens.
WATCHDOG_SLACK = 1.0

_lock = threading.Lock()
_installed_pid = 0
_sinks: weakref.WeakSet[_Sink] = weakref.WeakSet()
_fork_hooks: list[weakref.WeakMethod[Callable[[], None]]] = []
_fork_hook_registered = False
#: sink -> the pid whose multiprocessing exit already flushes it
_child_exit_pids: weakref.WeakKeyDictionary[_Sink, int] = weakref.WeakKeyDictionary()
#: ``time.monotonic()`` when the interpreter started exiting (None before).
exit_started: float | None = None
#: Held by the one flush of every sink in progress (exit hook, SIGTERM handler, watchdog).
_flush_lock = threading.Lock()
#: Set when the SIGTERM handler starts its flush in the main thread.
_handler_started = threading.Event()
#: SIGTERM's disposition was looked at (once per process, inherited by forks).
_sigterm_checked = False
#: The watchdog's pipe (read end, write end): the signal wakeup fd unless another one was set;
#: the handler writes to it too.
_wakeup: tuple[int, int] | None = None


def install(sink: _Sink, *, handle_sigterm: bool = False) -> None:
    """Track ``sink`` for the exit flush; register the process hooks the first time.

    ``handle_sigterm``: also take SIGTERM, if nobody has (see the module's docstring).
    """
    global _installed_pid  # noqa: PLW0603 - once per process
    with _lock:
        _sinks.add(sink)
        if _installed_pid == 0:
            atexit.register(_at_exit)
            _installed_pid = os.getpid()
    if handle_sigterm:
        _take_sigterm()


def on_fork_in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in a forked child (while its object lives)."""
    global _fork_hook_registered  # noqa: PLW0603 - one os.register_at_fork per process
    with _lock:
        _fork_hooks[:] = [hook for hook in _fork_hooks if hook() is not None]
        _fork_hooks.append(weakref.WeakMethod(method))
        if not _fork_hook_registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_registered = True


def stop_at_child_exit(sink: _Sink) -> None:
    """In a multiprocessing child, stop ``sink`` when the child exits (once per process).

    Such a child leaves through ``os._exit``: atexit hooks never run there, but
    ``multiprocessing.util.Finalize`` callbacks do. Spawned and forked children alike.
    """
    import multiprocessing
    import multiprocessing.util

    if multiprocessing.parent_process() is None:
        return
    pid = os.getpid()
    with _lock:
        if _child_exit_pids.get(sink) == pid:
            return
        _child_exit_pids[sink] = pid
    multiprocessing.util.Finalize(sink, _stop_after_other_threads(sink), exitpriority=100)


def _stop_after_other_threads(sink: _Sink) -> Callable[[], None]:
    """Multiprocessing runs its finalizers *before* it joins the child's non-daemon threads,
    so records those threads log afterwards would be lost. Joining them here could hang (an
    idle ThreadPoolExecutor's threads end only in ``threading._shutdown``), so a non-daemon
    thread waits for them and stops the sink last: ``threading._shutdown`` joins it."""
    ref = weakref.ref(sink)

    def stop() -> None:
        target = ref()
        if target is None:
            return
        if not _other_live_threads():
            with _flush_lock:  # one whole-process flush at a time (SIGTERM's too)
                target.stop()
            return

        def stop_after_the_others() -> None:
            while others := _other_live_threads():
                for thread in others:
                    thread.join()
            with _flush_lock:
                target.stop()

        try:
            threading.Thread(target=stop_after_the_others, name="loguru-vlogs-exit").start()
        except RuntimeError:  # no new threads at this point of the exit: flush what we have
            target.stop()

    return stop


def _other_live_threads() -> list[threading.Thread]:
    skip = (threading.current_thread(), threading.main_thread())
    return [t for t in threading.enumerate() if t not in skip and not t.daemon and t.is_alive()]


def live_sinks() -> list[_Sink]:
    """The sinks of this process that are still referenced."""
    return list(_sinks)


def _at_exit() -> None:
    """Flush every live sink within its ``shutdown_timeout``, all budgets counted from now."""
    global exit_started  # noqa: PLW0603 - one process-wide fact: the interpreter is exiting
    exit_started = time.monotonic()
    with _flush_lock:
        _flush_all(exit_started)


def _flush_all(started: float) -> None:
    """Flush every live sink until ``started`` + its budget; report what was lost."""
    sinks = live_sinks()
    # Every sink starts flushing now, in parallel: one dead server must not eat the budget
    # of the sinks that are flushed after it.
    for sink in sinks:
        sink.exit_flush_started(started + sink.shutdown_budget())
    for sink in sinks:
        sink.exit_flush(started + sink.shutdown_budget())


def _flush_bound() -> float:
    """Longest a SIGTERM flush may take before the process is ended regardless."""
    return max((sink.shutdown_budget() for sink in live_sinks()), default=0.0) + WATCHDOG_SLACK


# -- SIGTERM --------------------------------------------------------------------------------------


def _take_sigterm() -> None:
    """Install the SIGTERM handler and its watchdog if SIGTERM has its default action.

    Only from the main thread (``signal.signal`` needs it) and only once per process: an
    application's handler, installed before or after, is never replaced.
    """
    global _sigterm_checked  # noqa: PLW0603 - once per process
    if os.name != "posix" or threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        if _sigterm_checked:
            return
        _sigterm_checked = True
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return  # the application's handler, or SIG_IGN: theirs to keep
    signal.signal(signal.SIGTERM, _on_sigterm)
    _start_watchdog()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM in the main thread: flush every sink, then die by SIGTERM."""
    if _handler_started.is_set():
        _die(signum)  # a second SIGTERM during the flush: end now, as without the sink
    if _in_sink_code(frame) and _poke_watchdog(signum):
        # The main thread was stopped inside the sink, maybe holding a lock the flush needs.
        # The watchdog calls this handler again a little later, or flushes from its thread.
        # (Tripping the signal again from here would call this handler back at once, nested.)
        return
    _handler_started.set()
    _terminate(signum)


#: Modules whose code may hold a lock the flush takes (the command line's are not among them).
_SINK_MODULES = "loguru_vlogs._"
_NOT_SINK_MODULES = ("loguru_vlogs._cli",)


def _in_sink_code(frame: FrameType | None) -> bool:
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith(_SINK_MODULES) and not name.startswith(_NOT_SINK_MODULES):
            return True
        frame = frame.f_back
    return False


def _terminate(signum: int) -> NoReturn:
    """Flush every live sink (unless another flush runs: then wait for it), then die."""
    try:
        if _flush_lock.acquire(timeout=_flush_bound()):
            _flush_all(time.monotonic())
    finally:
        _die(signum)


def _die(signum: int) -> NoReturn:
    """End the process by ``signum``'s default action, from any thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signum, signal.SIG_DFL)
    elif not _default_action_from_any_thread(signum):
        os._exit(128 + signum)
    os.kill(os.getpid(), signum)
    # Still alive: the kernel ignores a signal whose action is the default one when it is sent
    # to the first process of a PID namespace (Python as PID 1 in a container). Exit with the
    # status a shell (or tini) gives a process killed by that signal.
    os._exit(128 + signum)


def _default_action_from_any_thread(signum: int) -> bool:
    """``signal.signal(signum, SIG_DFL)`` works in the main thread only: ask the C API."""
    try:
        import ctypes

        setsig = ctypes.pythonapi.PyOS_setsig
        setsig.argtypes = (ctypes.c_int, ctypes.c_void_p)
        setsig.restype = ctypes.c_void_p
        setsig(signum, None)  # SIG_DFL is the null handler
    except Exception:  # noqa: BLE001 - no ctypes or no C API (another Python): exit instead
        return False
    return True


def _start_watchdog() -> None:
    """Start the watchdog: a daemon thread reading our pipe, which is also the signal wakeup
    fd (Python's C-level handler writes the signal's number there even while the main thread
    runs no Python code) unless another one is set (asyncio's, trio's): theirs stays, and then
    only the handler's pokes reach the watchdog."""
    global _wakeup  # noqa: PLW0603 - one watchdog per process
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    with contextlib.suppress(ValueError, OSError):
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        if previous != -1:
            signal.set_wakeup_fd(previous)
    thread = threading.Thread(
        target=_watch, args=(read_end,), name="loguru-vlogs-sigterm", daemon=True
    )
    try:
        thread.start()
    except RuntimeError:  # at interpreter shutdown: no watchdog
        os.close(read_end)
        os.close(write_end)
        return
    _wakeup = (read_end, write_end)


def _poke_watchdog(signum: int) -> bool:
    """Tell the watchdog about ``signum`` (from the handler); False when there is none."""
    if _wakeup is None:
        return False
    with contextlib.suppress(OSError):  # full: it has been told already
        os.write(_wakeup[1], bytes([signum]))
    return True


#: Seconds between the watchdog's calls of the handler while the main thread defers it.
_RETRIP_INTERVAL = 0.01


def _watch(read_end: int) -> None:
    """Wait for SIGTERM while our handler is the one installed (a handler the application
    installed since decides alone), then make sure the process ends in time."""
    while True:
        try:
            data = os.read(read_end, 512)
        except OSError:
            return
        if not data:
            return
        if signal.SIGTERM in data and signal.getsignal(signal.SIGTERM) is _on_sigterm:
            _see_sigterm_through()


def _see_sigterm_through() -> None:
    """The handler normally flushes and dies at once. While it has not started (the main
    thread is inside the sink's code, or stuck outside Python), call it again every few
    milliseconds; after :data:`HANDLER_GRACE`, flush from here. Should the flush hang, end
    the process once its budget is long past. Returns only if the application took SIGTERM
    over meanwhile."""
    main = threading.main_thread().ident
    deadline = time.monotonic() + HANDLER_GRACE
    while not _handler_started.wait(_RETRIP_INTERVAL):
        if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
            return
        if time.monotonic() >= deadline or main is None:
            _terminate(signal.SIGTERM)
        # A real signal, so that a wait in the main thread is interrupted and the handler runs.
        signal.pthread_kill(main, signal.SIGTERM)
    bound = _flush_bound()
    threading.Event().wait(bound)
    emit(f"the SIGTERM flush did not end within {bound:g}s: ending the process")
    _die(signal.SIGTERM)


def _rewatch_in_child() -> None:
    """A forked child shares its parent's pipe: its signals would wake the parent's watchdog.
    Give it a pipe and a watchdog of its own (none if our handler is not installed anymore)."""
    global _wakeup
    if _wakeup is None:
        return
    inherited, _wakeup = _wakeup, None
    with contextlib.suppress(ValueError, OSError):
        current = signal.set_wakeup_fd(-1)
        if current != inherited[1]:
            signal.set_wakeup_fd(current)  # someone else's: leave it
    for fd in inherited:
        os.close(fd)
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        _start_watchdog()


def _after_fork_in_child() -> None:
    global _lock, _flush_lock, _handler_started  # noqa: PLW0603 - the parent's may have been held at the fork
    _lock = threading.Lock()
    _flush_lock = threading.Lock()
    _handler_started = threading.Event()
    _rewatch_in_child()
    for hook in list(_fork_hooks):
        method = hook()
        if method is not None:
            method()
