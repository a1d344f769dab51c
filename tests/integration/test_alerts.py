"""Alerts that reach a person, with real parts: a real HTTP server receives the webhook, a real SMTP
server (aiosmtpd) the email, a real command its JSON; a real app crashing on a code bug raises the
alert; an unreachable webhook is retried and recorded undelivered while the daemon stays quick."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from corral.clock import ManualClock
from corral.config.sinks import to_sinks
from corral.config.spec import AppSpec
from corral.daemon.core import DaemonCore
from corral.daemon.ops.apps import Context
from corral.daemon.store import MemoryStore
from corral.daemon.supervisor import Supervisor
from corral.daemon.timers import manual_timers
from corral.feature_events import Alert as AlertEvent
from corral.events import InstanceCrashed
from corral.feature_events import AlertDelivery
from corral.logs.sinks import FileLogs
from corral.monitor.alerts import BACKOFF
from corral.monitor.alertservice import AlertService, configure
from tests.conftest import Corral, app, wait_until

CODE_BUG = {"code": 1, "signal": None, "pid": 42, "language": "python", "exc_type": "KeyError", "message": "'user'",
            "classification": "code_bug", "is_code_bug": True, "frames": [], "tail": ["KeyError: 'user'"]}


# -- real servers ------------------------------------------------------------------------------
class Hook:
    """An HTTP server on 127.0.0.1 that keeps every POST (path, JSON body) and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[tuple[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.posts.append((self.path, json.loads(body)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


class Mailbox:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[Any] = []
        self.logins: list[tuple[str, str]] = []
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                box.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
            login = (auth_data.login.decode(), auth_data.password.decode())
            box.logins.append(login)
            return AuthResult(success=login == ("corral", "s3cret-pw"), handled=False)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator,
                                     auth_require_tls=False)
        self.controller.start()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.controller.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_sink(**raw: Any) -> dict[str, Any]:
    return to_sinks([raw])[0]


async def attempt(sink: dict[str, Any], alert: dict[str, Any] | None = None, suppressed: int = 0
                  ) -> tuple[bool, str, bool]:
    core = DaemonCore(asyncio.get_running_loop())
    service = AlertService(core, [sink])
    try:
        return await service.run_delivery(sink, alert or sample_alert(), suppressed)
    finally:
        service.close()


def sample_alert() -> dict[str, Any]:
    return {"id": "6567ab12.1", "kind": "code_bug", "severity": "warning", "status": "firing", "app": "api",
            "instance": 0, "mount": "", "metric": "", "title": "api[0] crashed on a code bug: KeyError: 'user'",
            "ts": 1_700_000_000.0, "details": {"exc_type": "KeyError"}}


# -- each sink, delivered by the subprocess --------------------------------------------------------
def test_a_slack_webhook_gets_text_and_the_structured_alert(hook: Hook) -> None:
    ok = asyncio.run(attempt(one_sink(type="webhook", url=hook.url), suppressed=3))
    assert ok == (True, "", True)
    ((path, body),) = hook.posts
    assert path == "/services/T000/B000"
    assert body["text"] == ("[corral WARNING] api[0] crashed on a code bug: KeyError: 'user' "
                            "(3 identical alert(s) suppressed since the last one)")
    assert (body["corral"]["kind"], body["corral"]["app"], body["corral"]["suppressed"]) == ("code_bug", "api", 3)
    assert body["corral"]["host"] == socket.gethostname()


def test_an_alertmanager_webhook_gets_alertmanagers_body(hook: Hook) -> None:
    assert asyncio.run(attempt(one_sink(type="webhook", url=hook.url, format="alertmanager")))[0]
    ((_, body),) = hook.posts
    assert (body["version"], body["status"], body["receiver"], body["truncatedAlerts"]) == ("4", "firing", "corral", 0)
    assert body["groupKey"] == '{}:{alertname="code_bug"}'
    (alert,) = body["alerts"]
    assert alert["labels"] == {"alertname": "code_bug", "severity": "warning", "host": socket.gethostname(),
                               "app": "api", "instance": "0"}
    assert alert["annotations"]["summary"] == "api[0] crashed on a code bug: KeyError: 'user'"
    assert (alert["startsAt"], alert["endsAt"]) == ("2023-11-14T22:13:20Z", "0001-01-01T00:00:00Z")
    assert len(alert["fingerprint"]) == 16 and body["commonLabels"] == alert["labels"]


def test_a_webhook_that_refuses_is_not_retried_and_one_that_fails_is(hook: Hook) -> None:
    hook.status = 404
    assert asyncio.run(attempt(one_sink(type="webhook", url=hook.url, format="json"))) == (
        False, "HTTP 404 Not Found", False)
    hook.status = 503
    assert asyncio.run(attempt(one_sink(type="webhook", url=hook.url))) == (False, "HTTP 503 Service Unavailable", True)
    port = closed_port()
    ok, reason, retry = asyncio.run(attempt(one_sink(type="webhook", url=f"http://127.0.0.1:{port}/x")))
    assert (ok, reason, retry) == (False, "cannot reach 127.0.0.1: Connection refused", True)


def test_an_email_reaches_a_real_smtp_server_and_the_password_is_never_shown(mailbox: Mailbox, tmp_path: Path
                                                                              ) -> None:
    env = tmp_path / "smtp.env"
    env.write_text("SMTP_USER=corral\nSMTP_PASSWORD=s3cret-pw\n")
    sink = one_sink(type="email", to=["ops@example.com", "dev@example.com"], **{"from": "corral@example.com"},
                    smtp=f"127.0.0.1:{mailbox.port}", env_file=str(env))
    assert asyncio.run(attempt(sink)) == (True, "", True)
    ((rcpts, message),) = mailbox.messages
    assert rcpts == ["ops@example.com", "dev@example.com"] and mailbox.logins == [("corral", "s3cret-pw")]
    assert message["Subject"] == "[corral WARNING] api[0] crashed on a code bug: KeyError: 'user'"
    assert (message["From"], message["To"]) == ("corral@example.com", "ops@example.com, dev@example.com")
    body = message.get_payload()
    assert "app: api instance 0" in body and '"exc_type": "KeyError"' in body
    env.write_text("SMTP_USER=corral\nSMTP_PASSWORD=wrong-pw\n")
    ok, reason, retry = asyncio.run(attempt(sink))
    assert (ok, reason, retry) == (False, "SMTP login refused (535)", False)
    assert "wrong-pw" not in reason and len(mailbox.messages) == 1


def test_a_command_gets_the_alert_as_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    script = tmp_path / "page-me"
    script.write_text(f"#!/bin/sh\ncat > {out}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert asyncio.run(attempt(one_sink(type="command", cmd=[str(script)]))) == (True, "", True)
    got = json.loads(out.read_text())
    assert (got["id"], got["kind"], got["app"], got["suppressed"]) == ("6567ab12.1", "code_bug", "api", 0)
    assert got["text"].startswith("[corral WARNING] api[0] crashed")
    failing = one_sink(type="command", cmd=["sh", "-c", "echo no pager here >&2; exit 3"])
    assert asyncio.run(attempt(failing)) == (False, "sh exited with code 3: no pager here", True)


def test_a_delivery_that_hangs_is_killed_at_its_deadline() -> None:
    async def body() -> tuple[tuple[bool, str, bool], float]:
        core = DaemonCore(asyncio.get_running_loop())
        sink = one_sink(type="command", cmd=["sleep", "60"])
        service = AlertService(core, [sink], deadline=1.0)
        started = time.monotonic()
        result = await service.run_delivery(sink, sample_alert())
        service.close()
        return result, time.monotonic() - started

    result, took = asyncio.run(body())
    assert result[0] is False and took < 5
    assert result[1] in ("no answer within 1s (killed)", "sleep did not finish within 0.5s")


# -- the daemon side: a real crash, a real sink ----------------------------------------------------
def test_a_real_code_bug_reaches_the_webhook_and_a_user_error_does_not(hook: Hook, tmp_path: Path) -> None:
    async def body() -> tuple[list[Any], list[Any], AlertService]:
        loop = asyncio.get_running_loop()
        sup = Supervisor(loop, MemoryStore(), FileLogs(str(tmp_path)))
        sup.install_signal_handlers()
        seen: list[Any] = []
        sup.bus.listen(seen.append, AlertEvent, AlertDelivery, InstanceCrashed)
        service = configure(sup.core, [one_sink(type="webhook", url=hook.url)])
        for name, script in (("api", app("codebug.py")), ("cfg", None)):
            cmd = [sys.executable, script] if script else [sys.executable, "-c", "int('x')"]
            sup.start(sup.add_app(AppSpec(name=name, cwd=str(tmp_path), cmd=cmd, autorestart="never"), {}))
        deadline = time.monotonic() + 30
        def settled() -> bool:  # both crashes seen, and every alert raised so far has its outcome
            raised = {e.alert for e in seen if isinstance(e, AlertEvent) and e.sinks}
            done = {e.alert for e in seen if isinstance(e, AlertDelivery)}
            return sum(isinstance(e, InstanceCrashed) for e in seen) == 2 and len(raised) == 3 and raised <= done

        while not settled():
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.05)
        await asyncio.sleep(0)
        sup.close()
        return seen, hook.posts, service

    seen, posts, service = asyncio.run(body())
    alerts = [e for e in seen if isinstance(e, AlertEvent)]
    assert {(a.app, a.alert_kind) for a in alerts} == {("api", "code_bug"), ("api", "errored"), ("cfg", "errored")}
    code_bug = next(a for a in alerts if a.alert_kind == "code_bug")
    assert code_bug.title == "api[0] crashed on a code bug: KeyError: 'name' (code_bug; exit code 1)"
    assert code_bug.sinks == ("webhook:127.0.0.1",)
    texts = [body["text"] for _, body in posts]
    assert "[corral WARNING] api[0] crashed on a code bug: KeyError: 'name' (code_bug; exit code 1)" in texts
    assert not any("ValueError" in text for text in texts)  # a user error is counted, not paged
    assert service.engine.counted == {("cfg", "user_error"): 1}


def test_an_unreachable_webhook_is_retried_then_undelivered_and_ls_stays_quick(tmp_path: Path) -> None:
    """A webhook that accepts connections and never answers: each attempt waits for its timeout
    in a subprocess; meanwhile ``ls`` through the core answers at once."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"

        async def body() -> tuple[list[Any], list[float], dict[str, Any]]:
            loop = asyncio.get_running_loop()
            clock = ManualClock(start=time.monotonic())
            core = DaemonCore(loop, clock=clock, timers=manual_timers(clock))
            sup = Supervisor(loop, MemoryStore(), FileLogs(str(tmp_path)), core=core)
            sup.install_signal_handlers()
            core.context = Context(sup, str(tmp_path / "dump.json"))
            seen: list[Any] = []
            sup.bus.listen(seen.append, AlertDelivery)
            service = configure(core, [one_sink(type="webhook", url=url)])
            service.deadline = 2.0  # each attempt: a 1 s network timeout, killed at 2 s
            core.publish(InstanceCrashed(app="api", instance=0, report=CODE_BUG, message="KeyError: 'user'"))
            ls_times = []
            for step in range(len(BACKOFF) + 1):
                deadline = time.monotonic() + 15
                while service.running == 0 and not seen:
                    assert time.monotonic() < deadline, "no delivery running"
                    await asyncio.sleep(0.01)
                while service.running:  # an attempt hangs: the loop still answers
                    started = time.monotonic()
                    await core.call("ls")
                    ls_times.append(time.monotonic() - started)
                    await asyncio.sleep(0.05)
                    assert time.monotonic() < deadline
                if step < len(BACKOFF):
                    await asyncio.sleep(0.05)
                    clock.advance(BACKOFF[step])  # the retry falls due
            while not seen:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            status = await core.call("alerts")
            sup.close()
            return seen, ls_times, status

        seen, ls_times, status = asyncio.run(body())
    (delivery,) = seen
    assert (delivery.sink, delivery.outcome, delivery.attempts) == ("webhook:127.0.0.1", "undelivered", 5)
    assert delivery.reason == "no answer from 127.0.0.1 within 1s"
    assert ls_times and max(ls_times) < 0.1, ls_times
    (shown,) = status["alerts"]
    assert shown["deliveries"]["webhook:127.0.0.1"]["outcome"] == "undelivered"


# -- the real daemon -------------------------------------------------------------------------------
def test_the_daemon_alerts_on_a_code_bug_in_events_and_corral_alerts(corral: Corral, workdir: Path) -> None:
    path = workdir / "corral.toml"
    path.write_text(f'[[apps]]\nname = "api"\nscript = "{app("codebug.py")}"\nautorestart = false\n')
    corral.run("start", str(path), check=False)
    events = wait_until(lambda: [e for e in corral.events("all") if e["kind"] == "alert"], timeout=20,
                        what="the alert events")
    wait_until(lambda: len([e for e in corral.events("all") if e["kind"] == "alert"]) == 2, timeout=10,
               what="the errored alert")
    events = [e for e in corral.events("all") if e["kind"] == "alert"]
    assert [(e["app"], e["data"]["kind"], e["data"]["severity"]) for e in events] == [
        ("api", "code_bug", "warning"), ("api", "errored", "critical")]
    assert events[0]["message"] == "warning: api[0] crashed on a code bug: KeyError: 'name' (code_bug; exit code 1)"
    shown = json.loads(corral.run("alerts", "--json").stdout)
    assert [a["kind"] for a in shown["alerts"]] == ["code_bug", "errored"]
    assert shown["sinks"] == [] and shown["loaded"] is True
    text = corral.run("alerts").stdout
    assert "crashed on a code bug: KeyError: 'name'" in text
    assert "no alert sinks configured: alerts go to daemon.log and `corral events` only" in text
    refused = corral.run("alerts", "test", check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "corral: no alert sinks are configured: alerts go to daemon.log and `corral events` only (add [[sinks]] "
        'tables to the ecosystem file: type = "webhook", "email" or "command")')
    assert "alert " in (Path(corral.home) / "daemon.log").read_text()
    bus = json.loads(corral.run("ping", "--json").stdout)["bus"]
    assert [s["name"] for s in bus["subscribers"] if s.get("name")] == ["alerts"]  # the feature's own, named


def test_a_threshold_event_and_its_clear_reach_the_webhook_by_kind(hook: Hook) -> None:
    """The sampler's ``threshold`` events (issue 11 items 1-2) are taken by their kind: a host-wide disk
    alert, per mount, and its resolve, in Alertmanager's shape."""
    from typing import ClassVar

    from corral.events import Event

    class Threshold(Event):  # the shape the rules publish: app "" for the host
        metric: str
        value: float
        limit: float
        cleared: bool = False
        mount: str = ""
        samples: int = 2

        KIND: ClassVar[str] = "threshold"

    async def body() -> list[Any]:
        core = DaemonCore(asyncio.get_running_loop())
        seen: list[Any] = []
        core.bus.listen(seen.append, AlertDelivery)
        configure(core, [one_sink(type="webhook", url=hook.url, format="alertmanager")])
        core.publish(Threshold(app="", metric="disk", value=81.5, limit=75.0, mount="/data"))
        core.publish(Threshold(app="", metric="disk", value=82.0, limit=75.0, mount="/data"))  # held back
        deadline = time.monotonic() + 20
        while len(seen) < 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        core.publish(Threshold(app="", metric="disk", value=60.0, limit=75.0, mount="/data", cleared=True))
        while len(seen) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        return seen

    seen = asyncio.run(body())
    assert [d.outcome for d in seen] == ["delivered", "delivered"]
    statuses = [(b["status"], b["alerts"][0]["labels"]["mount"], b["alerts"][0]["annotations"]["summary"])
                for _, b in hook.posts]
    assert statuses == [("firing", "/data", "disk over the threshold on host /data: 81.5 (limit 75.0)"),
                        ("resolved", "/data", "disk back within the threshold on host /data: 60.0 (limit 75.0)")]


def test_sinks_from_the_file_reach_a_real_webhook_and_survive_a_new_daemon(corral: Corral, workdir: Path,
                                                                          hook: Hook) -> None:
    """The file's [[sinks]] (top level) configure the daemon; a code bug reaches the webhook; a
    new daemon keeps them (stored settings) and `alerts test` goes through them."""
    path = workdir / "corral.toml"
    path.write_text(f'[[sinks]]\ntype = "webhook"\nurl = "{hook.url}"\n\n'
                    f'[[apps]]\nname = "api"\nscript = "{app("codebug.py")}"\nautorestart = false\n')
    corral.run("start", str(path), check=False)
    wait_until(lambda: any("api[0] crashed on a code bug" in body.get("text", "")
                           for _, body in hook.posts), timeout=20, what="the code-bug alert at the webhook")
    assert json.loads(corral.run("alerts", "--json").stdout)["sinks"] != []
    corral.expect_daemon_restart()
    corral.run("kill")
    corral.run("ping")
    before = len(hook.posts)
    result = corral.run("alerts", "test")
    assert "delivered" in result.stdout
    assert len(hook.posts) == before + 1
