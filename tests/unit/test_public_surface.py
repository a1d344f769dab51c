"""The public surface (README: ``corral.app`` and ``corral.errors``): exact ``__all__`` lists, every
name present, ``py.typed`` shipped, and the redactor public in one place only."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = {
    "corral.app": ["listen", "notify", "ready", "status", "stopping", "watchdog"],
    "corral.app.logging": ["JsonFormatter", "JsonHandler"],
    "corral.app.errors": ["CODE_BUG", "USER_ERROR", "EXTERNAL", "Classification", "classify", "is_code_bug",
                          "classify_name", "classify_status"],
    "corral.errors": ["CODE_BUG", "USER_ERROR", "EXTERNAL", "Classification", "classify", "is_code_bug",
                      "classify_name", "classify_status"],
    "corral.app.redact": ["REDACTED", "Redactor", "default_redactor", "redact_line", "redact_bytes",
                          "redact_obj", "is_secret_name", "luhn_ok", "redact_url_credentials", "PROVIDER_KEYS", "SENSITIVE_KEYS",
                          "PAYLOAD_KEYS", "STRONG_SUFFIXES", "SECRET_WORDS", "NOT_SECRET_KEYS"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_every_name_exists(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == PUBLIC[module]
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []
    namespace: dict[str, object] = {}
    exec(f"from {module} import *", namespace)  # noqa: S102 - what a star import really gives
    assert set(namespace) - {"__builtins__"} == set(PUBLIC[module])


def test_corral_errors_is_the_app_library_under_its_public_name() -> None:
    import corral.app.errors
    import corral.errors

    assert all(getattr(corral.errors, n) is getattr(corral.app.errors, n) for n in corral.errors.__all__)


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "corral" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["corral"]


def test_the_redactor_is_public_in_one_place() -> None:
    """corral.app.redact is the public redactor: no second (private) copy of it, and corral's own
    modules use only its public names, as an app would."""
    app = ROOT / "corral" / "app"
    assert not (app / "_redact.py").exists()
    offenders = []
    for path in (ROOT / "corral").rglob("*.py"):
        if path.parent == app:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bredact\._\w|corral\.app\._\w|from corral\.app\.redact import [^\n]*\b_\w", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_app_library_is_standalone() -> None:
    """What a managed program imports loads nothing of corral but the app library itself."""
    import subprocess
    import sys

    from corral.app import _prefilter

    code = ("import sys; import corral.app, corral.app.logging, corral.app.redact, corral.errors; "
            "print(sorted(m for m in sys.modules if m.startswith('corral')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    native = ["corral.app._scan"] if _prefilter.NATIVE else []
    assert eval(out) == ["corral", "corral.app", "corral.app._prefilter", *native, "corral.app._secretnames",  # noqa: S307
                         "corral.app.errors", "corral.app.logging", "corral.app.redact", "corral.errors"]
