"""FastAPI (Starlette) middleware that binds request fields to every record of a request.

    pip install fastapi
    python examples/fastapi_middleware.py --url http://127.0.0.1:9428

The middleware puts ``request_id``, ``method``, ``path`` and ``client`` in loguru's context
for the whole request, so the endpoint's own records carry them too, then logs one access
record with the status and duration. To keep the example self-contained it drives the app
with three in-process requests instead of running a server; in production run it under
uvicorn as usual, with the same ``logger.add(VLogsSink(...))`` at startup.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from loguru_vlogs import VLogsSink

try:
    from fastapi import FastAPI, Request, Response
except ImportError:
    FastAPI = None  # type: ignore[assignment,misc]


def create_app() -> Any:
    app = FastAPI()

    @app.middleware("http")
    async def bind_request_fields(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:12]
        client = request.client.host if request.client else None
        started = time.perf_counter()
        with logger.contextualize(
            request_id=request_id, method=request.method, path=request.url.path, client=client
        ):
            response = await call_next(request)
            logger.info(
                "{} {} -> {}",
                request.method,
                request.url.path,
                response.status_code,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        response.headers["x-request-id"] = request_id
        return response

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        logger.info("loading item {}", item_id, item_id=item_id)
        return {"item_id": item_id}

    return app


async def call(app: Any, path: str, request_id: str) -> int:
    """One GET through the ASGI interface (what a server such as uvicorn does)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"example"), (b"x-request-id", request_id.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": b"", "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # no disconnect while the response is being sent
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(url: str) -> None:
    logger.remove()
    logger.add(VLogsSink(url=url, service="example-fastapi"))
    app = create_app()
    for i in range(3):
        status = await call(app, f"/items/{i}", f"req-{i}")
        print(f"GET /items/{i} -> {status}")
    await logger.complete()


def main() -> None:
    parser = argparse.ArgumentParser(description="Request fields bound by a middleware.")
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    args = parser.parse_args()
    if FastAPI is None:
        print("this example needs FastAPI: pip install fastapi")
        sys.exit(0)
    asyncio.run(run(args.url))


if __name__ == "__main__":
    main()
