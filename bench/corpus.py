"""A corpus of realistic log lines for the log benchmarks (deterministic: seeded).

Kinds (``KINDS``):

* ``seq``: the issue's ``L%08d abcdefghijklmnopqrstuvwxyz0123456789...`` line (letters and a
  10-digit run on every line);
* ``access``: nginx "combined" access lines plus ``$request_time`` & co., with ids in paths,
  query strings, user agents;
* ``json``: JSON logs: pino (epoch-millisecond ``time``), structlog (ISO timestamps, nested
  objects, trace ids), ``corral.app.logging`` (some with a whole traceback in one string), an
  LLM client (``prompt_tokens``, ``cache_key``: names close to secret ones);
* ``pylog``: Python ``logging`` lines (``%(asctime)s %(levelname)s %(name)s: %(message)s``),
  uvicorn / celery / SQLAlchemy lines, ``key=value`` pairs that are not secrets;
* ``traceback``: Python tracebacks, one frame line or code line per line;
* ``node``: Node errors and stack traces, with ``code: 'ECONNREFUSED'`` property lines;
* ``secrets``: lines of the kinds above, where 5 % of the lines hold a real secret (a password
  or token in JSON, a bearer token, Basic credentials, a card number, ``key=value``, a cookie).

Every line carries a sequence number so the log benchmark can find each line exactly once:
``seq=0000042`` at the end of text lines, ``"seq":"0000042"`` in JSON objects, and the ``L``
number of ``seq`` lines.  A line is a :class:`Template`: the bytes before and after the number.

    .venv/bin/python bench/corpus.py --kind json --lines 20 [--start 0]    # print some lines
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from corpus_text import node_stack, python_traceback

KINDS = ("seq", "access", "json", "pylog", "traceback", "node", "secrets")
SEED = 20261129
SECRET_SHARE = 0.05
DISTINCT = 20_000  #: line templates per kind (lines repeat them, with their own numbers)


@dataclass(frozen=True)
class Template:
    """One line: ``head + number + tail`` (``tail`` ends with the newline)."""

    head: bytes
    tail: bytes
    width: int = 7

    def line(self, seq: int) -> bytes:
        return b"%s%0*d%s" % (self.head, self.width, seq, self.tail)


#: Finds a line's sequence number in a log file, per kind.
SEQ_RE = {kind: re.compile(rb"seq(?:=|\":\")(\d{7})") for kind in KINDS}
SEQ_RE["seq"] = re.compile(rb"\bL(\d{8}) ")


def text(line: str) -> Template:
    return Template((line + " seq=").encode(), b"\n")


def jsonl(obj: dict[str, object]) -> Template:
    body = json.dumps({**obj, "seq": "#"}, ensure_ascii=False, separators=(",", ":"))
    head, tail = body.split('"#"')
    return Template((head + '"').encode(), ('"' + tail + "\n").encode())


# -- the kinds ----------------------------------------------------------------------------------------
_SEQ_TAIL = b" abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklm 001\n"
_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", "kube-probe/1.31",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _ip(rng: random.Random) -> str:
    first = rng.choice((10, 172, 192, 203, 198, 66, 81, 185))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _path(rng: random.Random) -> str:
    n = rng.randrange(1, 9_999_999)
    return rng.choice([
        f"/api/v1/orders/{n}", f"/api/v1/users/{n % 99991}/orders?page={n % 7 + 1}&limit=50",
        f"/static/js/app.{rng.getrandbits(32):08x}.js", "/healthz", "/metrics",
        f"/api/v1/products?category=shoes&sort=price_asc&page={n % 40}",
        f"/api/v1/search?q=red%20shoes%20size%20{n % 12 + 36}&page=1",
        f"/api/v1/payments/pi_{rng.getrandbits(64):016x}/confirm",
        f"/images/products/{n}/large.webp", f"/api/v2/carts/{rng.getrandbits(40):010x}/items/{n % 1000}",
    ])


def access_line(rng: random.Random, i: int) -> Template:
    sec = 86_000 + i
    stamp = f"29/{_MONTHS[10]}/2026:{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d} +0000"
    method = rng.choices(["GET", "POST", "PUT", "DELETE"], [80, 14, 4, 2])[0]
    status = rng.choices([200, 201, 204, 301, 304, 400, 401, 404, 499, 500, 502], [60, 6, 4, 2, 8, 3, 2, 8, 1, 2, 1])[0]
    referer = rng.choice(["-", "https://shop.example.com/", f"https://shop.example.com/cart?ref={i % 977}"])
    rt = rng.expovariate(40)
    return text(f'{_ip(rng)} - - [{stamp}] "{method} {_path(rng)} HTTP/1.1" {status} {rng.randrange(0, 90_000)} '
                f'"{referer}" "{rng.choice(_UAS)}" rt={rt:.3f} uct="0.000" uht="{rt * 0.9:.3f}" '
                f'urt="{rt * 0.95:.3f}" rid={rng.getrandbits(128):032x}')


_EVENTS = ["order paid", "order created", "cart updated", "email queued", "cache miss", "payment captured",
           "request handled", "job finished", "user signed in", "stock reserved"]


def _iso(i: int, digits: int = 3) -> str:
    sec = 86_000 + i // 7
    frac = f"{(i * 7919) % 10 ** digits:0{digits}d}"
    return f"2026-11-29T{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.{frac}"


def json_line(rng: random.Random, i: int) -> Template:
    style = rng.randrange(5)
    order = rng.randrange(1, 99_999_999)
    if style == 0:  # pino
        return jsonl({"level": 30, "time": 1_764_460_318_123 + i * 7, "pid": 4242,
                      "hostname": "api-7f9c8d6b5-x2k4q", "reqId": f"req-{i % 65536:x}", "msg": rng.choice(_EVENTS),
                      "orderId": order, "amount": round(rng.uniform(1, 500), 2), "currency": "EUR",
                      "userId": f"usr_{rng.getrandbits(40):010x}", "responseTime": round(rng.uniform(1, 90), 3)})
    if style == 1:  # structlog
        return jsonl({"timestamp": _iso(i, 6) + "Z", "level": "info", "event": rng.choice(_EVENTS),
                      "logger": "shop.orders", "order_id": order, "amount": round(rng.uniform(1, 500), 2),
                      "items": rng.randrange(1, 9), "customer": {"id": order % 99991, "country": "DE"},
                      "trace_id": f"{rng.getrandbits(128):032x}", "span_id": f"{rng.getrandbits(64):016x}"})
    if style == 2:  # corral.app.logging
        return jsonl({"ts": _iso(i) + "+00:00", "level": "info", "logger": "worker", "message": "processed job",
                      "job_id": f"job_01HZX{rng.getrandbits(40):010X}", "queue": "emails", "attempt": 1,
                      "duration_ms": rng.randrange(2, 900), "idempotency_key": f"ik_{rng.getrandbits(48):012x}"})
    if style == 3:  # an LLM client
        return jsonl({"ts": _iso(i) + "+00:00", "level": "info", "logger": "llm", "message": "completion",
                      "model": "gpt-4o-mini", "prompt_tokens": rng.randrange(100, 4000),
                      "completion_tokens": rng.randrange(10, 900), "cache_key": f"ck_{rng.getrandbits(64):016x}",
                      "latency_ms": round(rng.uniform(100, 4000), 1), "author": "ann", "metadata": {"env": "prod"}})
    tb = "".join(python_traceback(rng, i))
    return jsonl({"ts": _iso(i) + "+00:00", "level": "error", "logger": "api", "message": "lookup failed",
                  "exc_type": "KeyError", "exc_message": "'user'", "traceback": tb.rstrip("\n"),
                  "classification": "code_bug", "is_code_bug": True})


def pylog_line(rng: random.Random, i: int) -> Template:
    stamp = _iso(i).replace("T", " ").replace(".", ",")
    n = rng.randrange(1, 99_999)
    message = rng.choice([
        f"INFO worker: processed job {n} in {n % 97} ms",
        f"WARNING app.db: slow query took {n % 5000} ms (rows={n % 700}, table=orders)",
        f'INFO uvicorn.access: 10.0.{n % 256}.7:{n % 60000 + 1024} - "GET /api/v1/orders/{n} HTTP/1.1" 200',
        f"INFO celery.app.trace: Task shop.tasks.send_receipt[{rng.getrandbits(128):032x}] succeeded in "
        f"{n / 10000:.4f}s: None",
        f"DEBUG urllib3.connectionpool: https://api.stripe.com:443 \"POST /v1/charges HTTP/1.1\" 200 {n % 3000}",
        f"INFO sqlalchemy.engine.Engine: SELECT orders.id, orders.total FROM orders WHERE orders.user_id = "
        f"%(user_id_1)s [cached since {n / 100:.4g}s ago] {{'user_id_1': {n}}}",
        f"INFO shop.orders: order_id={n} amount={n / 100:.2f} currency=EUR items={n % 9 + 1} user=ann",
        f"ERROR shop.payments: charge failed for order {n}: card_declined (attempt {n % 3 + 1}/3)",
    ])
    return text(f"{stamp} {message}")


def _lines_of(make: Callable[[random.Random, int], list[str]]) -> Callable[[random.Random, int], Iterator[Template]]:
    def gen(rng: random.Random, i: int) -> Iterator[Template]:
        for line in make(rng, i):
            yield text(line.rstrip("\n"))
    return gen


_MAKERS: dict[str, Callable[[random.Random, int], Iterator[Template]]] = {
    "access": lambda rng, i: iter((access_line(rng, i),)),
    "json": lambda rng, i: iter((json_line(rng, i),)),
    "pylog": lambda rng, i: iter((pylog_line(rng, i),)),
    "traceback": _lines_of(lambda rng, i: "".join(python_traceback(rng, i)).splitlines()),
    "node": _lines_of(node_stack),
}


def secret_line(rng: random.Random, i: int) -> Template:
    """A line that holds a real secret (see the module docstring)."""
    from corpus_text import secret_line as make

    line = make(rng, i)
    if line.startswith("{"):
        return jsonl(json.loads(line))
    if line.startswith("Cookie:"):  # the rule redacts a cookie to the end of the line: number first
        return Template(b"seq=", (" " + line + "\n").encode())
    return text(line)


def templates(kind: str, count: int, seed: int = SEED) -> list[Template]:
    """``count`` line templates of ``kind``, the same for the same seed."""
    if kind == "seq":
        return [Template(b"L", _SEQ_TAIL, 8)] * count
    rng = random.Random(f"{seed}-{kind}")
    out: list[Template] = []
    i = 0
    kinds = [k for k in _MAKERS]
    while len(out) < count:
        if kind == "secrets":
            if rng.random() < SECRET_SHARE:
                out.append(secret_line(rng, i))
            else:
                out.extend(_MAKERS[rng.choice(kinds)](rng, i))
        else:
            out.extend(_MAKERS[kind](rng, i))
        i += 1
    return out[:count]


def lines(kind: str, count: int, start: int = 0, seed: int = SEED, distinct: int = DISTINCT) -> list[bytes]:
    """``count`` lines of ``kind`` numbered from ``start`` (templates repeat every ``distinct``)."""
    tpl = templates(kind, distinct, seed)
    return [tpl[(start + k) % len(tpl)].line(start + k) for k in range(count)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=KINDS, default="secrets")
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--start", type=int, default=0)
    args = ap.parse_args()
    sys.stdout.buffer.write(b"".join(lines(args.kind, args.lines, args.start)))


if __name__ == "__main__":
    main()
