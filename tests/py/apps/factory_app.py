"""An app built by a factory (``--factory``), and a name that is not callable."""

from __future__ import annotations

from typing import Any

NOT_CALLABLE = 42


def create_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"made by the factory"})

    return app
