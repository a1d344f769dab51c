"""A bounded HTTP load for tests: N client threads on 127.0.0.1 until stopped (or a time cap).

Counts every failure by kind (refused, reset, timeout, bad status) so a test can
assert zero; a new connection per request unless keep_alive is asked for.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Result:
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bodies: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0


class Load:
    def __init__(self, port: int, threads: int = 4, max_seconds: float = 60.0, keep_alive: bool = False,
                 host: str = "127.0.0.1") -> None:
        self.port, self.host, self.keep_alive = port, host, keep_alive
        self.result = Result()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Result:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        return self.result

    def wait_requests(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.result.ok < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.result.ok} requests in {timeout}s: {self.result.failures}")
            time.sleep(0.01)

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("GET", "/", headers={} if self.keep_alive else {"Connection": "close"})
                response = conn.getresponse()
                body = response.read().decode()
                kind = None if response.status == 200 else f"status {response.status}"
            except ConnectionRefusedError:
                kind = "refused"
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                kind = "reset"
            except TimeoutError:
                kind = "timeout"
            except (OSError, http.client.HTTPException) as exc:
                kind = type(exc).__name__
            if kind is not None or not self.keep_alive:
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                if kind is None:
                    self.result.ok += 1
                    self.result.latencies.append(time.perf_counter() - started)
                    self.result.bodies[body.split()[0]] += 1
                else:
                    self.result.failures[kind] += 1
        if conn is not None:
            conn.close()
