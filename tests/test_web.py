"""/metrics, /healthz, /readyz over real HTTP."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from monitor.serve.web import Readiness, build_app
from monitor.telemetry import Telemetry


async def test_endpoints() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    telemetry.declare(["door"], ["chat"], ["missed"])
    problems: list[str] = []
    readiness = Readiness(problems=lambda: problems)
    async with TestClient(TestServer(build_app(registry, readiness))) as client:
        assert (await client.get("/healthz")).status == 200
        problems.append("loop poll:door is not running: OSError: boom")
        resp = await client.get("/healthz")
        assert resp.status == 503
        assert (await resp.json())["problems"] == ["loop poll:door is not running: OSError: boom"]
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["reason"] == "store not open"
        readiness.store_open = True
        assert (await client.get("/readyz")).status == 200
        body = await (await client.get("/metrics")).text()
    assert 'callmon_provider_up{provider="door"} 0.0' in body
    assert 'callmon_notifications_total{notifier="chat",outcome="dropped"} 0.0' in body
    assert 'callmon_rule_fired_total{rule="missed"} 0.0' in body
    assert "callmon_build_info{" in body


async def test_a_connection_past_the_limit_is_closed_without_a_failed_task() -> None:
    """Every connection busy: the new one is closed, after its handler started (closed at once,
    its handler task failed on aiohttp's assertion and asyncio logged an unretrieved error)."""
    import asyncio
    import gc

    from aiohttp import web

    from monitor.serve.web import ConnectionLimit

    release, busy = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        busy.set()
        await release.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    limit = ConnectionLimit(runner.server, limit=1)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    failures: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: failures.append(context))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(busy.wait(), 10)

        async def past_the_limit() -> bytes:
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await asyncio.wait_for(r2.read(), 10)
            finally:
                w2.close()

        for burst in (1, 1, 5):  # one at a time, then five at once, with the first one busy
            assert await asyncio.gather(*(past_the_limit() for _ in range(burst))) == [b""] * burst
        assert limit.closed == 7
        assert len(runner.server.connections) == 1
        release.set()
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 200")
        writer.close()
        gc.collect()  # an unretrieved task exception is reported as its task is freed
        await asyncio.sleep(0)
        assert failures == []
    finally:
        loop.set_exception_handler(None)
        await runner.cleanup()


async def test_connections_stay_bounded_while_clients_keep_coming_back() -> None:
    """Slow clients closed to make room come straight back. A connection already closing (its
    handler still finishing) was chosen again as the one to close, which closed nothing, and
    the open connections grew past the limit: 1,500 slow clients took a process to its
    1,024 open files. Only connections still open are counted and chosen."""
    import asyncio

    from aiohttp import web

    from monitor.serve.web import ConnectionLimit
    from monitor.serve.web import runner as serve_runner

    runner = serve_runner(web.Application())
    await runner.setup()
    assert runner.server is not None
    server = runner.server
    limit = ConnectionLimit(server, limit=8)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def slow_client() -> None:
        while True:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
                await reader.read()  # until it is closed to make room
            except ConnectionError:  # closed, with its request unread: reset
                pass
            writer.close()

    def kept_open() -> int:  # open and not already chosen to be closed at the next turn
        still_open = [h for h in server.connections if h.transport and not h.transport.is_closing()]
        return len(still_open) - limit.closing

    clients = [asyncio.create_task(slow_client()) for _ in range(200)]
    most = 0
    try:
        async with asyncio.timeout(60):
            while limit.closed < 2000 and most <= 8:
                most = max(most, kept_open())
                await asyncio.sleep(0)
    finally:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await runner.cleanup()
    assert most <= 8, f"{most} connections kept open at once, limit 8"
