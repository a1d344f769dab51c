"""The pure parts of start-at-boot and the exports: the stop budget, systemd quoting, the
watchdog interval, nginx's upstream addresses, secrets left out of every export."""

from __future__ import annotations

import pytest

from corral.config.spec import AppSpec
from corral.daemon.sdservice import take, watchdog_interval
from corral.export import Export, Options, build, changed, plain_env
from corral.export.nginx import _server_address
from corral.export.systemd import assignment, quote
from corral.lifecycle.order import stop_budget


def spec(**settings: object) -> AppSpec:
    return AppSpec.from_dict({"name": "web", "cwd": "/srv/web", "cmd": ["python3", "app.py"], **settings})


def test_the_stop_budget_waits_for_each_layer_s_slowest_app() -> None:
    assert stop_budget([("a", 5.0, []), ("b", 30.0, [])]) == 30 + 10 + 10  # one layer: the slowest
    # web depends on db: web stops first (its 8 s), then db (its 20 s)
    assert stop_budget([("db", 20.0, []), ("web", 8.0, ["db"]), ("cron", 2.0, [])]) == (8 + 10) + (20 + 10) + 10
    assert stop_budget([("a", 3.0, ["b"]), ("b", 4.0, ["a"])]) == 4 + 10 + 10  # a cycle: all at once
    assert stop_budget([("a", 3.0, ["a"])]) == 3 + 10 + 10  # naming itself is ignored


def test_systemd_words_and_values_are_taken_literally() -> None:
    assert quote("/usr/bin/python3") == "/usr/bin/python3"
    assert quote("a b") == '"a b"'
    assert quote("100%") == "100%%"
    assert quote("$HOME") == "$$HOME"
    assert quote('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert assignment("RATE", "50%") == 'Environment="RATE=50%%"'
    assert assignment("CORRAL_INSTANCE", "%i", specifiers=True) == 'Environment="CORRAL_INSTANCE=%i"'


def test_the_watchdog_pings_at_half_the_timeout_and_only_for_us() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 42) is None
    assert watchdog_interval({}, 42) is None
    environ = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1", "PATH": "/bin"}
    assert take(environ) == {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1"}
    assert environ == {"PATH": "/bin"}  # no app inherits them


@pytest.mark.parametrize("address, upstream", [
    ("tcp://127.0.0.1:8000", "127.0.0.1:8000"),
    ("tcp://0.0.0.0:8000", "127.0.0.1:8000"),
    ("tcp://[::]:8000", "[::1]:8000"),
    ("unix:/run/web.sock", "unix:/run/web.sock"),
    ("tcp://127.0.0.1:0", None),  # a port chosen at start: nginx cannot know it
])
def test_nginx_upstream_addresses(address: str, upstream: str | None) -> None:
    assert _server_address(address) == upstream


def test_secrets_are_never_exported() -> None:
    web = spec(env={"MODE": "prod", "DB_PASSWORD": "hunter2", "URL": "postgres://u:pw@db/x"})
    out = Export()
    assert plain_env(out, web) == {"MODE": "prod"}
    assert out.unmapped == [
        'app "web": env DB_PASSWORD: a secret, not written (keep it in an env_file or a secret store)',
        'app "web": env URL: a secret, not written (keep it in an env_file or a secret store)',
    ]
    for kind in ("systemd", "docker", "compose", "kubernetes", "nginx", "ansible"):
        result = build(kind, [web], Options())
        assert not any("hunter2" in text or "pw@" in text for text in result.files.values()), kind


def test_only_changed_settings_are_reported() -> None:
    assert changed(spec()) == ["cmd"]
    assert set(changed(spec(watch=["/srv/web"], instances=2))) == {"cmd", "watch", "instances"}
    result = build("kubernetes", [spec(watch=["/srv/web"], log_compress=True)], Options())
    assert result.unmapped == ['app "web": log_compress: not mapped to kubernetes',
                               'app "web": watch: not mapped to kubernetes']


def test_an_unknown_export_is_refused() -> None:
    with pytest.raises(ValueError, match="no export 'helm'"):
        build("helm", [spec()], Options())
