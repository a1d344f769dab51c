"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven over the DevTools
protocol): it loads with the token, lists every app, its chart fills, its restart button restarts
the instance, and a wrong token shows the login page.  A screenshot is kept in the test's tmp dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cdp import CHROMIUM, Browser
from tests.conftest import Corral, app, wait_until
from tests.webhelp import start_web

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup test)")


def _rows(browser: Browser) -> list[dict[str, Any]]:
    return browser.js("""[...document.querySelectorAll('#apps tbody tr')].map(tr => ({
        app: tr.dataset.app, instance: +tr.dataset.instance, pid: tr.querySelector('.pid').textContent,
        points: +tr.querySelector('svg.cpu').getAttribute('data-points')}))""") or []


def test_dashboard_in_chromium(corral: Corral, workdir: Path, tmp_path: Path) -> None:
    (workdir / "corral.toml").write_text(
        f'monitor_interval = "1s"\n'
        f'[[apps]]\nname = "api"\nscript = "{app("worker.py")}"\ninstances = 2\n'
        f'[[apps]]\nname = "ticker"\nscript = "{app("ticker.py")}"\nargs = ["200"]\n'
        f'[[apps]]\nname = "bug"\nscript = "{app("codebug.py")}"\nautorestart = false\n')
    corral.run("start", str(workdir / "corral.toml"))
    web = start_web(corral)
    base = f"http://127.0.0.1:{web.port}/"
    with Browser() as browser:
        browser.goto(base + "#token=" + web.full)
        want = {(r["name"], r["instance"]) for r in corral.ls()}
        wait_until(lambda: {(r["app"], r["instance"]) for r in _rows(browser)} == want, 30, "every instance in the table")
        assert browser.js("document.querySelector('#login').hidden") is True
        assert browser.js("location.hash") == ""  # the token left the address bar
        # the chart fills from the live stream
        before = max(r["points"] for r in _rows(browser) if r["app"] == "api")
        wait_until(lambda: max(r["points"] for r in _rows(browser) if r["app"] == "api") >= before + 2, 30,
                   "the api chart to take new samples")
        # restart: a first click asks, the second acts
        old = corral.row("ticker")["pid"]
        button = "document.querySelector('button[data-action=restart][data-app=ticker]')"
        browser.js(f"{button}.click()")
        assert browser.js(f"{button}.textContent") == "restart?"
        browser.js(f"{button}.click()")
        new = wait_until(lambda: (p := corral.row("ticker")["pid"]) not in (None, old) and p, 30, "a new ticker pid")
        wait_until(lambda: any(r["app"] == "ticker" and r["pid"] == str(new) for r in _rows(browser)), 30,
                   "the table to show the new pid")
        wait_until(lambda: "ticker: done" in browser.js("document.querySelector('#action-result').textContent"), 30,
                   "the action's result")
        # scale: the first click asks for the count, the second sends it
        scale = "document.querySelector('button[data-action=scale][data-app=api]')"
        browser.js(f"{scale}.click()")
        browser.js(f"{scale}.parentNode.querySelector('input.count').value = '3'")
        assert browser.js(f"{scale}.textContent") == "scale?"
        browser.js(f"{scale}.click()")
        wait_until(lambda: sorted(r["instance"] for r in corral.ls() if r["name"] == "api") == [0, 1, 2], 30,
                   "api scaled to 3 instances")
        wait_until(lambda: sum(r["app"] == "api" for r in _rows(browser)) == 3, 30, "three api rows in the table")
        # the timeline of a crashed app: its crash report (type, message, classification, frames)
        browser.js("document.querySelector('#pick').value = 'bug'; document.querySelector('#pick').onchange()")
        report = wait_until(lambda: "KeyError" in (t := browser.js("document.querySelector('#timeline').innerText")) and t,
                            30, "the crash report in bug's timeline")
        assert "code_bug" in report and "codebug.py" in report
        browser.js("window.scrollTo(0, 0)")
        browser.screenshot(str(tmp_path / "dashboard.png"))
        assert (tmp_path / "dashboard.png").stat().st_size > 5000
        # a first view under 200 KB
        sizes = browser.js("performance.getEntriesByType('resource').map(e => e.transferSize)"
                           ".concat(performance.getEntriesByType('navigation').map(e => e.transferSize))")
        assert 0 < sum(sizes) < 200 * 1024, sizes
        # a wrong token: the login page, nothing else
        browser.send("Network.clearBrowserCookies")
        browser.goto("about:blank")  # a new page load (a new fragment alone would not reload)
        wait_until(lambda: browser.js("location.href") == "about:blank", 30, "about:blank")
        browser.goto(base + "#token=wrong-token-wrong-token-wrong-token")
        wait_until(lambda: browser.js(
            "!!document.querySelector('#main') && document.querySelector('#main').hidden"
            " && !document.querySelector('#login').hidden && document.querySelector('#login-error').textContent"),
                   30, "the login page")
        assert browser.js("document.querySelector('#login-error').textContent") == "the token is not valid"
        browser.screenshot(str(tmp_path / "login.png"))
        # the login form with the read-only token: the apps, and no button that acts
        browser.js(f"document.querySelector('#token').value = {json.dumps(web.read_only)}")
        browser.js("document.querySelector('#login-form').requestSubmit()")
        wait_until(lambda: len(_rows(browser)) == len(corral.ls()), 30, "the table after logging in read-only")
        assert browser.js("document.querySelector('#role').textContent") == "read-only"
        assert browser.js("document.querySelectorAll('button[data-action]').length") == 0
    print(json.dumps({"screenshots": [str(tmp_path / "dashboard.png"), str(tmp_path / "login.png")]}))
