"""One alert delivery, run as a subprocess: ``python -m corral.monitor.deliver``.

The daemon keeps TLS, http and smtp libraries out of its memory: it writes one job as JSON
on this program's stdin, ``{"sink": {...}, "alert": {...}, "suppressed": N, "timeout": T}``
(the sink as :func:`corral.config.sinks.to_sinks` makes it), and reads one line of JSON back,
``{"ok": true}`` or ``{"ok": false, "reason": "one line"}``; it kills this process after its
own deadline.  A reason never holds a secret (the SMTP password, a token in a URL).

- ``webhook``: a JSON POST.  ``format = "slack"``: ``{"text": ..., "corral": {the alert}}``
  (Slack takes ``text``; the structured fields ride along); ``"json"``: the alert itself
  plus ``text``; ``"alertmanager"``: Alertmanager's webhook body (version 4).  A 2xx reply
  is delivered.
- ``email``: SMTP with STARTTLS (port 587), TLS (465) or plain (loopback only); user and
  password from ``env_file`` (``SMTP_USER``, ``SMTP_PASSWORD``) when it is set.
- ``command``: runs ``cmd`` with the alert's JSON on stdin; exit code 0 is delivered.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from corral.exceptions import OperationFailed

__all__ = ["deliver", "body_for", "text_of", "main"]

UA = "corral-alerts"
EPOCH_ZERO = "0001-01-01T00:00:00Z"


def text_of(alert: dict[str, Any], suppressed: int = 0) -> str:
    """The one-line text a person reads (Slack's ``text``, the email's subject)."""
    severity = str(alert.get("severity", "warning")).upper()
    text = f"[corral {severity}] {alert.get('title', '')}"
    if suppressed:
        text += f" ({suppressed} identical alert(s) suppressed since the last one)"
    return text


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def alertmanager(alert: dict[str, Any], suppressed: int, host: str) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for one alert."""
    labels = {"alertname": str(alert.get("kind")), "severity": str(alert.get("severity")), "host": host}
    for key in ("app", "mount", "metric"):
        if alert.get(key):
            labels[key] = str(alert[key])
    if alert.get("instance") is not None:
        labels["instance"] = str(alert["instance"])
    annotations = {"summary": str(alert.get("title", "")), "suppressed": str(suppressed)}
    status = alert.get("status", "firing")
    ts = float(alert.get("ts") or time.time())
    item = {"status": status, "labels": labels, "annotations": annotations, "startsAt": _iso(ts),
            "endsAt": _iso(ts) if status == "resolved" else EPOCH_ZERO, "generatorURL": "",
            "fingerprint": _fingerprint(labels)}
    group = {"alertname": labels["alertname"]}
    return {"version": "4", "groupKey": '{}:{alertname="' + labels["alertname"] + '"}', "truncatedAlerts": 0,
            "status": status, "receiver": "corral", "groupLabels": group, "commonLabels": labels,
            "commonAnnotations": annotations, "externalURL": "", "alerts": [item]}


def _fingerprint(labels: dict[str, str]) -> str:
    import hashlib

    text = "\0".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def body_for(fmt: str, alert: dict[str, Any], suppressed: int, host: str) -> dict[str, Any]:
    if fmt == "alertmanager":
        return alertmanager(alert, suppressed, host)
    text = text_of(alert, suppressed)
    fields = {**alert, "host": host, "suppressed": suppressed}
    if fmt == "json":
        return {**fields, "text": text}
    return {"text": text, "corral": fields}


def _webhook(sink: dict[str, Any], alert: dict[str, Any], suppressed: int, host: str, timeout: float) -> None:
    import urllib.error
    import urllib.request

    data = json.dumps(body_for(sink["format"], alert, suppressed, host)).encode()
    request = urllib.request.Request(sink["url"], data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": UA})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 (http(s) only: checked)
            reply.read(65536)
    except urllib.error.HTTPError as exc:
        retry = exc.code >= 500 or exc.code in (408, 425, 429)  # else the request itself is refused
        raise Failed(f"HTTP {exc.code} {exc.reason}", retry=retry) from None
    except urllib.error.URLError as exc:
        raise Failed(f"cannot reach {_host(sink['url'])}: {_reason(exc.reason)}") from None
    except TimeoutError:
        raise Failed(f"no answer from {_host(sink['url'])} within {timeout:g}s") from None
    except OSError as exc:
        raise Failed(f"cannot reach {_host(sink['url'])}: {_reason(exc)}") from None


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or "?"


def _reason(reason: Any) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def _email(sink: dict[str, Any], alert: dict[str, Any], suppressed: int, host: str, timeout: float) -> None:
    import smtplib
    import ssl
    from email.message import EmailMessage

    user = password = None
    if sink.get("env_file"):
        from corral.config.envfile import read_env_file
        from corral.config.errors import ConfigError

        try:
            env = read_env_file(sink["env_file"])
        except (OSError, ConfigError) as exc:
            raise Failed(f"cannot read env_file {sink['env_file']}: {getattr(exc, 'strerror', None) or exc}") from None
        user, password = env.get("SMTP_USER"), env.get("SMTP_PASSWORD")
    message = EmailMessage()
    message["Subject"] = text_of(alert, suppressed)[:200]
    message["From"] = sink["from"]
    message["To"] = ", ".join(sink["to"])
    message.set_content(_email_body(alert, suppressed, host))
    context = ssl.create_default_context()
    try:
        if sink["security"] == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(sink["host"], sink["port"], timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(sink["host"], sink["port"], timeout=timeout)
        with smtp:
            if sink["security"] == "starttls":
                smtp.starttls(context=context)
            if user and password:
                smtp.login(user, password)
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise Failed(f"SMTP login refused ({exc.smtp_code})", retry=False) from None
    except smtplib.SMTPException as exc:
        raise Failed(f"SMTP: {type(exc).__name__}: {_smtp_reason(exc)}") from None
    except (OSError, ssl.SSLError) as exc:
        raise Failed(f"cannot reach {sink['host']}:{sink['port']}: {_reason(exc) or type(exc).__name__}") from None


def _smtp_reason(exc: Exception) -> str:
    text = str(exc).replace("\n", " ")
    return text[:200]


def _email_body(alert: dict[str, Any], suppressed: int, host: str) -> str:
    lines = [str(alert.get("title", "")), "", f"host: {host}", f"severity: {alert.get('severity')}",
             f"kind: {alert.get('kind')}"]
    if alert.get("app"):
        lines.append(f"app: {alert['app']}" + (f" instance {alert['instance']}" if alert.get("instance") is not None
                                                 else ""))
    if suppressed:
        lines.append(f"suppressed: {suppressed} identical alert(s) since the last one")
    lines += ["", json.dumps(alert.get("details", {}), indent=2, default=str)]
    return "\n".join(lines) + "\n"


def _command(sink: dict[str, Any], alert: dict[str, Any], suppressed: int, host: str, timeout: float) -> None:
    import subprocess

    data = json.dumps({**alert, "host": host, "suppressed": suppressed, "text": text_of(alert, suppressed)})
    try:
        done = subprocess.run(sink["cmd"], input=data.encode(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise Failed(f"{sink['cmd'][0]} did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise Failed(f"cannot run {sink['cmd'][0]}: {exc.strerror}") from None
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise Failed(f"{sink['cmd'][0]} exited with code {done.returncode}" + (f": {last[0][:200]}" if last[0] else ""))
    # (a command's own failures are retried: it may depend on something that comes back)


class Failed(OperationFailed):
    """A delivery that did not reach its sink; the text is one line without secrets.  ``retry``:
    whether trying again later may succeed (not for a refused login or a rejected request)."""

    def __init__(self, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.retry = retry


_SENDERS = {"webhook": _webhook, "email": _email, "command": _command}


def deliver(job: dict[str, Any]) -> dict[str, Any]:
    """Carry out one job (see the module docstring); the result to print."""
    import socket

    sink, alert = job["sink"], job["alert"]
    host = job.get("host") or socket.gethostname()
    try:
        _SENDERS[sink["type"]](sink, alert, int(job.get("suppressed", 0)), host, float(job.get("timeout", 10.0)))
    except Failed as exc:
        return {"ok": False, "reason": str(exc), "retry": exc.retry}
    except Exception as exc:  # an unexpected failure is still one line, never a traceback in daemon.log
        return {"ok": False, "reason": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"ok": True, "reason": ""}


def main() -> int:
    try:
        job = json.loads(sys.stdin.buffer.read(4 << 20))
        result = deliver(job)
    except (ValueError, KeyError, TypeError) as exc:
        result = {"ok": False, "reason": f"bad job: {type(exc).__name__}"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
