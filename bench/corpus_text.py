"""Multi-line material for bench/corpus.py: Python tracebacks, Node stacks, and lines with secrets."""

from __future__ import annotations

import base64
import json
import random

_PY_FRAMES = [
    ("/srv/app/.venv/lib/python3.11/site-packages/starlette/middleware/errors.py", "__call__",
     "await self.app(scope, receive, _send)"),
    ("/srv/app/.venv/lib/python3.11/site-packages/starlette/routing.py", "handle",
     "await self.app(scope, receive, send)"),
    ("/srv/app/.venv/lib/python3.11/site-packages/fastapi/routing.py", "run_endpoint_function",
     "return await dependant.call(**values)"),
    ("/srv/app/shop/api/orders.py", "get_order", "order = await repo.get(order_id, include=(\"items\", \"customer\"))"),
    ("/srv/app/shop/orders/service.py", "pay",
     "charge = self.gateway.charge(order.total_cents, currency=order.currency, customer=order.customer_id)"),
    ("/srv/app/shop/orders/repo.py", "get", "row = (await self.session.execute(stmt, {\"id\": order_id})).one()"),
    ("/srv/app/.venv/lib/python3.11/site-packages/sqlalchemy/engine/base.py", "_execute_context",
     "return self._exec_single_context(dialect, context, statement, parameters)"),
    ("/srv/app/.venv/lib/python3.11/site-packages/httpx/_client.py", "send",
     "response = await self._send_single_request(request)"),
    ("/srv/app/shop/workers/receipts.py", "run", "user = payload[\"user\"]"),
    ("/usr/lib/python3.11/json/decoder.py", "raw_decode", "raise JSONDecodeError(\"Expecting value\", s, err.value) from None"),
]
_PY_ERRORS = [
    "KeyError: 'user'",
    "httpx.ConnectTimeout: timed out",
    "ValueError: invalid literal for int() with base 10: 'abc'",
    'sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "10.0.3.12", '
    "port 5432 failed: Connection refused",
    "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    "AttributeError: 'NoneType' object has no attribute 'total_cents'",
    "sqlalchemy.exc.NoResultFound: No row was found when one was required",
]


def python_traceback(rng: random.Random, i: int) -> list[str]:
    """A Python traceback, as lines with their newlines (sometimes a chained one)."""
    out = ["Traceback (most recent call last):\n"]
    for path, func, code in rng.sample(_PY_FRAMES, rng.randrange(3, 7)):
        out.append(f'  File "{path}", line {rng.randrange(12, 2400)}, in {func}\n')
        out.append(f"    {code}\n")
        if rng.random() < 0.3:
            out.append("    " + "^" * rng.randrange(8, 40) + "\n")
    out.append(rng.choice(_PY_ERRORS) + "\n")
    if i % 5 == 0:
        out += ["\n", "During handling of the above exception, another exception occurred:\n", "\n",
                "Traceback (most recent call last):\n",
                f'  File "/srv/app/shop/api/errors.py", line {rng.randrange(10, 99)}, in handler\n',
                "    raise HTTPException(status_code=404, detail=f\"order {order_id} not found\")\n",
                "fastapi.exceptions.HTTPException: 404: order not found\n"]
    return out


_NODE_FRAMES = [
    "OrderService.pay (/srv/app/src/services/order.js:{l}:{c})",
    "async Router.handle (/srv/app/node_modules/express/lib/router/index.js:{l}:{c})",
    "Layer.handle [as handle_request] (/srv/app/node_modules/express/lib/router/layer.js:95:5)",
    "process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
    "async Promise.all (index {c})",
    "TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)",
    "Object.<anonymous> (/srv/app/dist/server.js:{l}:{c})",
    "/srv/app/node_modules/pg-pool/index.js:{l}:{c}",
    "Module._compile (node:internal/modules/cjs/loader:1469:14)",
]
_NODE_ERRORS = [
    "TypeError: Cannot read properties of undefined (reading 'id')",
    "ReferenceError: customerId is not defined",
    "Error: connect ECONNREFUSED 10.0.3.12:5432",
    "SyntaxError: Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON",
    "RangeError: Invalid time value",
]


def node_stack(rng: random.Random, i: int) -> list[str]:
    """A Node error with its stack, sometimes with the error's properties printed after it."""
    error = rng.choice(_NODE_ERRORS)
    out = [error]
    for frame in rng.sample(_NODE_FRAMES, rng.randrange(3, 8)):
        out.append("    at " + frame.format(l=rng.randrange(10, 900), c=rng.randrange(1, 80)))
    if "ECONNREFUSED" in error:
        out[-1] += " {"
        out += ["  errno: -111,", "  code: 'ECONNREFUSED',", "  syscall: 'connect',", "  address: '10.0.3.12',",
                "  port: 5432", "}"]
    if i % 4 == 0:
        out.append(f"Node.js v20.{rng.randrange(9, 19)}.{rng.randrange(0, 9)}")
    return out


# Luhn-valid test numbers, in the layouts cards are written in
_CARDS = ["4111 1111 1111 1111", "4242-4242-4242-4242", "5555555555554444", "3782 822463 10005",
          "6011 1111 1111 1117", "4222222222222", "5105 1051 0510 5100", "3530-1113-3330-0000",
          "6250 9410 0652 8599"]


def _token(rng: random.Random, n: int = 32) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(n)).decode().rstrip("=")


def secret_line(rng: random.Random, i: int) -> str:
    """A line holding a real secret: JSON (returned as JSON text) or plain text."""
    user = rng.choice(["ann", "bob", "chen", "dmitri", "eva"])
    card = rng.choice(_CARDS)
    token = _token(rng)
    basic = base64.b64encode(f"{user}:{_token(rng, 9)}".encode()).decode()
    choices = [
        json.dumps({"level": "info", "msg": "login", "user": user, "password": _token(rng, 12)}),
        json.dumps({"ts": "2026-11-29T23:51:58.123+00:00", "level": "debug", "logger": "oauth",
                    "message": "token refreshed", "response": {"access_token": token, "expires_in": 3600}}),
        json.dumps({"level": 30, "time": 1_764_460_318_123 + i, "msg": "charge", "orderId": i,
                    "card": card, "amount": 12.5}),
        json.dumps({"level": "info", "event": "webhook", "headers": {"Authorization": f"Bearer {token}"}}),
        json.dumps({"level": "info", "msg": f"paid with card {card}", "order_id": i, "apiKey": _token(rng, 16)}),
        f"2026-11-29 23:51:58,123 INFO auth: login ok user={user} password={_token(rng, 10)}",
        f"2026-11-29 23:51:58,123 DEBUG httpx: headers={{'authorization': 'Bearer {token}'}}",
        f'10.0.0.7 - - [29/Nov/2026:23:51:58 +0000] "GET /oauth/callback?code=abc&access_token={token}&state=x '
        f'HTTP/1.1" 302 0 "-" "curl/8.5.0"',
        f"config loaded: DB_PASSWORD={_token(rng, 12)} STRIPE_API_KEY=sk_live_{_token(rng, 18)} region=eu-west-1",
        f'curl -H "Authorization: Basic {basic}" https://api.example.com/v1/orders',
        f"charged card {card} amount=12.50 currency=EUR order={i}",
        f"Cookie: session={_token(rng, 16)}; csrftoken={_token(rng, 16)}; theme=dark",
        f"    at Client.connect (/srv/app/node_modules/pg/lib/client.js:132:9) password: '{_token(rng, 8)}'",
    ]
    return choices[i % len(choices)] if rng.random() < 0.5 else rng.choice(choices)
