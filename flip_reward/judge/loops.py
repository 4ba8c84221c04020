"""Objects bound to one event loop (HTTP clients, routers, semaphores), the cancellation of a loop's pending tasks,
and the sync entry point ``run_sync``.

One registry, keyed by event loop, holds everything of a loop so that it can be released at once: explicitly with
``close_clients``, or on its own when the loop shuts down (``asyncio.run`` and every runner that calls
``loop.shutdown_asyncgens`` close a loop's clients before the loop ends, so a per-step ``asyncio.run(flip.ascore(...))``
leaks no connection). The registry is locked: ``FlipReward.score`` may run from several threads, each with its
own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")
_SHUTDOWN_HOOK = "flip_reward.shutdown_hook"
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def loop_scoped(key: Hashable, create: Callable[[], T]) -> T:
    """The object ``create()`` made for ``key`` in the running event loop, made on first use."""
    loop = asyncio.get_running_loop()
    with _lock:
        scoped = _registry.get(loop)
        if scoped is None:
            for closed in [other for other in _registry if other.is_closed()]:
                del _registry[closed]  # a loop closed without shutting down its async generators
            scoped = _registry[loop] = {}
            _close_at_shutdown(scoped)
        if key not in scoped:
            scoped[key] = create()
        return scoped[key]


def _close_at_shutdown(scoped: dict) -> None:
    """Arrange for ``close_clients`` to run when the running loop shuts down its async generators.

    The loop tracks every async generator started on it and closes each one in ``shutdown_asyncgens``; one that
    waits here closes the loop's clients then. It is kept in ``scoped`` so that it lives as long as the loop's share.
    """

    async def wait_for_shutdown() -> AsyncIterator[None]:
        try:
            yield
        finally:
            if _registry.get(asyncio.get_running_loop()) is scoped:  # not already closed by hand
                await close_clients()

    hook = wait_for_shutdown()
    scoped[_SHUTDOWN_HOOK] = hook
    asyncio.ensure_future(hook.__anext__())


async def close_clients() -> None:
    """Close and forget everything the running event loop holds (clients, routers, per-loop judge state)."""
    with _lock:
        held = _registry.pop(asyncio.get_running_loop(), {})
    held.pop(_SHUTDOWN_HOOK, None)
    for item in held.values():
        close = getattr(item, "close", None)
        if inspect.iscoroutinefunction(close):
            await close()


async def cancel_pending_tasks() -> None:
    """Cancel every task of the running loop but the caller's and wait until each has ended, again for the tasks
    those start while being cancelled (a cancelled judge call hands its request to a task of its own)."""
    current = asyncio.current_task()
    while pending := [task for task in asyncio.all_tasks() if task is not current and not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``make()`` in an event loop of its own (its clients closed before it ends); called from
    inside a running loop (a notebook, an async trainer) it runs on a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
