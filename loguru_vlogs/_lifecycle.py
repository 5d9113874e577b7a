"""Process-level hooks, in one place: the exit flush and the fork reset.

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
  spools let go of the parent's files. Objects are held weakly; dead ones are forgotten.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol


class _Sink(Protocol):
    def exit_flush_started(self, deadline: float) -> None: ...
    def exit_flush(self, deadline: float) -> None: ...
    def shutdown_budget(self) -> float: ...
    def stop(self) -> None: ...


_lock = threading.Lock()
_installed_pid = 0
_sinks: weakref.WeakSet[_Sink] = weakref.WeakSet()
_fork_hooks: list[weakref.WeakMethod[Callable[[], None]]] = []
_fork_hook_registered = False
#: sink -> the pid whose multiprocessing exit already flushes it
_child_exit_pids: weakref.WeakKeyDictionary[_Sink, int] = weakref.WeakKeyDictionary()
#: ``time.monotonic()`` when the interpreter started exiting (None before).
exit_started: float | None = None


def install(sink: _Sink) -> None:
    """Track ``sink`` for the exit flush; register the process hooks the first time."""
    global _installed_pid  # noqa: PLW0603 - once per process
    with _lock:
        _sinks.add(sink)
        if _installed_pid == 0:
            atexit.register(_at_exit)
            _installed_pid = os.getpid()


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
            target.stop()
            return

        def stop_after_the_others() -> None:
            while others := _other_live_threads():
                for thread in others:
                    thread.join()
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
    sinks = live_sinks()
    # Every sink starts flushing now, in parallel: one dead server must not eat the budget
    # of the sinks that are flushed after it.
    for sink in sinks:
        sink.exit_flush_started(exit_started + sink.shutdown_budget())
    for sink in sinks:
        sink.exit_flush(exit_started + sink.shutdown_budget())


def _after_fork_in_child() -> None:
    global _lock  # noqa: PLW0603 - the parent's lock may have been held at the fork
    _lock = threading.Lock()
    for hook in list(_fork_hooks):
        method = hook()
        if method is not None:
            method()
