"""Live feeds as Server-Sent Events: a run's progress stream and everyone's decisions.

One poller per feed reads the catalog and fans new items out to every client following
it, so a hundred browsers on one run cost one query per poll, not a hundred. A client
that reconnects sends ``Last-Event-ID``; it is replayed from the catalog from there and
then follows the poller, skipping what it has already seen: no gaps, no duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

Item = tuple[int, str, dict[str, Any]]
"""(id, event name, data): ids increase within a feed."""
Fetch = Callable[[int], list[Item]]
"""Items after an id, from the catalog (runs in a thread: it is blocking I/O)."""

POLL = 0.25
KEEPALIVE = 15.0
MAX_SECONDS = 600.0
"""How long one SSE response lasts; clients reconnect and resume (servers and proxies
should not hold a connection forever)."""


@dataclass
class _Feed:
    fetch: Fetch
    lookback: int
    last: int = 0
    clients: set[asyncio.Queue[Item | None]] = field(default_factory=set)
    sent: set[int] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class Feeds:
    """The app's live feeds, by key (``run:<id>``, ``decisions``); pollers start with
    their first client and stop with their last.

    ``lookback`` re-reads that many ids below the newest seen, for feeds whose ids can
    commit out of order (decisions from concurrent reviewers); a run's stream has one
    writer and needs none.
    """

    def __init__(self, poll: float = POLL) -> None:
        self.poll = poll
        self._feeds: dict[str, _Feed] = {}
        self._lock = asyncio.Lock()

    async def follow(
        self,
        key: str,
        fetch: Fetch,
        head: Callable[[], int],
        after: int,
        *,
        lookback: int = 0,
        until: Callable[[Item], bool] | None = None,
        seconds: float = MAX_SECONDS,
        keepalive: float = KEEPALIVE,
    ) -> AsyncIterator[list[Item]]:
        """Items of feed ``key`` after id ``after``, in batches: first what is stored,
        then live ones as they arrive (an empty batch after ``keepalive`` quiet seconds);
        ends after an item ``until`` accepts (a run's last event), or after ``seconds``
        (the browser reconnects with its last id and loses nothing)."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + seconds
        queue: asyncio.Queue[Item | None] = asyncio.Queue()
        feed = await self._attach(key, fetch, head, lookback, queue)
        seen: set[int] = set()

        def fresh(items: list[Item | None]) -> tuple[list[Item], bool]:
            batch: list[Item] = []
            for item in items:
                if item is None:
                    return batch, True
                if item[0] <= after or item[0] in seen:
                    continue  # already sent
                seen.add(item[0])
                batch.append(item)
                if until is not None and until(item):
                    return batch, True
            return batch, False

        try:
            cursor = after
            while stored := await run_in_threadpool(fetch, cursor):  # the catalog, in pages
                cursor = stored[-1][0]
                batch, done = fresh(list(stored))
                if batch:
                    yield batch
                if done:
                    return
            while (left := ends - loop.time()) > 0:
                try:
                    first = await asyncio.wait_for(queue.get(), min(left, keepalive))
                except TimeoutError:
                    yield []
                    continue
                items = [first]
                while not queue.empty():
                    items.append(queue.get_nowait())
                batch, done = fresh(items)
                if batch:
                    yield batch
                if done:
                    return
        finally:
            feed.clients.discard(queue)
            if not feed.clients and feed.task is not None:
                feed.task.cancel()
                if self._feeds.get(key) is feed:
                    del self._feeds[key]

    async def _attach(
        self, key: str, fetch: Fetch, head: Callable[[], int], lookback: int,
        queue: asyncio.Queue[Item | None],
    ) -> _Feed:  # fmt: skip
        async with self._lock:  # one poller per feed, started from a known head
            feed = self._feeds.get(key)
            if feed is None or feed.task is None or feed.task.done():
                feed = _Feed(fetch, lookback, last=await run_in_threadpool(head))
                self._feeds[key] = feed
                feed.task = asyncio.create_task(self._poll(feed))
            feed.clients.add(queue)
            return feed

    async def _poll(self, feed: _Feed) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                items = await run_in_threadpool(feed.fetch, max(0, feed.last - feed.lookback))
            except Exception:  # a database hiccup: try again next poll
                continue
            for item in items:
                if item[0] in feed.sent or (not feed.lookback and item[0] <= feed.last):
                    continue
                feed.last = max(feed.last, item[0])
                if feed.lookback:
                    feed.sent.add(item[0])
                for queue in list(feed.clients):
                    queue.put_nowait(item)
            if len(feed.sent) > 4 * feed.lookback + 1000:
                feed.sent = {i for i in feed.sent if i > feed.last - feed.lookback}

    async def close(self) -> None:
        """End every feed (the server is stopping): clients get their stream closed."""
        for feed in list(self._feeds.values()):
            for queue in list(feed.clients):
                queue.put_nowait(None)
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task
        self._feeds.clear()


async def sse(batches: AsyncIterator[list[Item]]) -> AsyncIterator[bytes]:
    """Batches of items as one ``text/event-stream`` chunk each (an empty batch is a
    keepalive comment, so proxies keep the connection open)."""
    yield b"retry: 2000\n\n"
    async for batch in batches:
        if not batch:
            yield b": keepalive\n\n"
            continue
        yield "".join(
            f"id: {seq}\nevent: {name}\ndata: "
            f"{json.dumps(data, separators=(',', ':'), default=str)}\n\n"
            for seq, name, data in batch
        ).encode()


def last_event_id(header: str | None, query: int | None) -> int:
    """Where a client resumes: its ``Last-Event-ID`` header, else ``?after=``, else 0."""
    from bildwerk.web.params import MAX_INT

    if header and header.strip().isdigit():
        return min(int(header.strip()), MAX_INT)
    return min(max(0, query or 0), MAX_INT)


SSE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}}}
"""What an SSE route declares in the OpenAPI schema."""


def event_stream(items: AsyncIterator[list[Item]]) -> StreamingResponse:
    """The response that sends ``items`` as Server-Sent Events, unbuffered by proxies."""
    return StreamingResponse(
        sse(items),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
