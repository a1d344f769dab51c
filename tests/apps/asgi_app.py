"""A minimal ASGI app for uvicorn (no framework): answers with its pid. BOOT_DELAY slows the import."""

import os
import time

time.sleep(float(os.environ.get("BOOT_DELAY", "0")))


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = f"pid={os.getpid()} instance={os.environ.get('CORRAL_INSTANCE')}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
