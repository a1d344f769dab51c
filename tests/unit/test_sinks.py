"""The [[sinks]] list: what a valid one becomes, and the one line each mistake gets (naming the field)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.config.convert import Invalid, render
from corral.config.sinks import to_sinks


def line(value: Any) -> str:
    """The message as a file's loader writes it (``<key><suffix>: <value> <text>``)."""
    with pytest.raises(Invalid) as caught:
        to_sinks(value)
    exc = caught.value
    return f"sinks{exc.suffix}: {render(exc.value if exc.suffix else value)} {exc.text}"


def test_the_issues_example_normalizes() -> None:
    sinks = to_sinks([
        {"type": "webhook", "url": "https://hooks.example.com/services/T000/B000", "format": "slack",
         "min_severity": "warning"},
        {"type": "email", "to": ["ops@example.com"], "from": "corral@example.com", "smtp": "smtp.example.com:587",
         "env_file": "/etc/corral/smtp.env"},
        {"type": "command", "cmd": "/usr/local/bin/page-me --team 'on call'", "min_severity": "critical"},
    ])
    assert sinks == [
        {"type": "webhook", "min_severity": "warning", "url": "https://hooks.example.com/services/T000/B000",
         "format": "slack", "name": "webhook:hooks.example.com"},
        {"type": "email", "min_severity": "warning", "to": ["ops@example.com"], "from": "corral@example.com",
         "host": "smtp.example.com", "port": 587, "security": "starttls", "env_file": "/etc/corral/smtp.env",
         "name": "email:ops@example.com"},
        {"type": "command", "min_severity": "critical", "cmd": ["/usr/local/bin/page-me", "--team", "on call"],
         "name": "command:page-me"},
    ]


def test_smtp_security_follows_the_port_and_plain_is_only_for_loopback() -> None:
    def one(smtp: str) -> dict[str, Any]:
        return to_sinks([{"type": "email", "to": "a@b.example", "from": "c@d.example", "smtp": smtp}])[0]

    assert (one("smtp.example.com:465")["security"], one("smtp.example.com:465")["port"]) == ("tls", 465)
    assert one("127.0.0.1:2525")["security"] == "plain"
    assert one("localhost:25")["security"] == "plain"
    assert one("[::1]:25")["host"] == "::1"
    assert line([{"type": "email", "to": "a@b.example", "from": "c@d.example", "smtp": "mail.example.com:25"}]) == (
        'sinks[0].smtp: "mail.example.com:25" is plain SMTP to mail.example.com, which is not a loopback host '
        "(use port 587 for STARTTLS or 465 for TLS; plain SMTP only to 127.0.0.1, ::1 or localhost)")


@pytest.mark.parametrize("value, expected", [
    ([{"type": "pager"}], 'sinks[0].type: "pager" is not a sink type (use "webhook", "email" or "command")'),
    ([{"url": "https://x.example"}], 'sinks[0].type: null is not a sink type (use "webhook", "email" or "command")'),
    ([{"type": "webhook", "url": "https://a.example"}, {"type": "webhook", "url": "ftp://files.example/x"}],
     'sinks[1].url: "ftp://files.example/x" is not an http(s) URL (a webhook is posted to http:// or https://host/...)'),
    ([{"type": "webhook", "url": "https://a.example", "colour": "red"}],
     'sinks[0].colour: "red" is not a key of a webhook sink (it takes type, url, format, min_severity, name)'),
    ([{"type": "webhook"}], 'sinks[0]: {"type": "webhook"} has no url (a webhook sink needs url)'),
    ([{"type": "webhook", "url": "https://a.example", "format": "teams"}],
     'sinks[0].format: "teams" is not a webhook format (use "slack", "alertmanager" or "json")'),
    ([{"type": "command", "cmd": ["page", "-x"], "min_severity": "high"}],
     'sinks[0].min_severity: "high" is not a severity (use "info", "warning" or "critical")'),
    ([{"type": "email", "to": ["ops"], "from": "c@d.example", "smtp": "localhost:25"}],
     'sinks[0].to[0]: "ops" is not an email address (user@host)'),
    ([{"type": "email", "to": "a@b.example", "from": "c@d.example", "smtp": "smtp.example.com"}],
     'sinks[0].smtp: "smtp.example.com" is not an SMTP server (host:port, e.g. smtp.example.com:587)'),
    ([{"type": "command", "cmd": []}],
     'sinks[0].cmd: [] is not a command (an argv list of strings, or a command line)'),
    ("https://hooks.example.com",
     'sinks: "https://hooks.example.com" is not a list of sinks (in TOML: [[sinks]] tables with type = "webhook", '
     '"email" or "command")'),
])
def test_a_mistake_is_one_line_naming_the_field(value: Any, expected: str) -> None:
    assert line(value) == expected


def test_a_password_in_a_bad_url_is_not_shown() -> None:
    assert line([{"type": "webhook", "url": "ftp://user:hunter2@files.example/x"}]).startswith(
        'sinks[0].url: "ftp://user:********@files.example/x" is not an http(s) URL')


def test_sink_names_are_unique() -> None:
    two = to_sinks([{"type": "webhook", "url": "https://a.example/1"}, {"type": "webhook", "url": "https://a.example/2"}])
    assert [s["name"] for s in two] == ["webhook:a.example", "webhook:a.example#2"]
    assert line([{"type": "webhook", "url": "https://a.example/1", "name": "ops"},
                 {"type": "command", "cmd": "true", "name": "ops"}]) == (
        'sinks[1].name: "ops" is already the name of sinks[0] (give each sink its own name)')
    assert to_sinks(None) == [] and to_sinks([]) == []
