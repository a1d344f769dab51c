"""The config fuzzer: random ecosystem files (TOML, YAML, JSON; every key with hostile values,
random keys, raw text) through ``validate`` with the start checks.

Every file gives a list of one-line messages naming the file, within a deadline, never an
exception; and a file that validates loads into specs the daemon accepts (``AppSpec.from_dict``).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from corral.config.fields import FIELD_BY_KEY, PM2_IGNORED
from corral.config.load import load_file, validate_file
from corral.config.logkeys import APP_DEFAULT_KEYS
from corral.config.spec import AppSpec
from tests.fuzzing import HOSTILE_TEXT, Tally, fuzz_settings, json_values

KEYS = sorted(FIELD_BY_KEY) + sorted(PM2_IGNORED)[:5] + ["env_production", "env_x", "bogus", "apps"]
DEADLINE = 20.0


#: Values near the bounds and of every shape a key takes: most make an app that almost validates.
PLAUSIBLE = [1, 2, 1024, 1025, "max", 0, -1, -(10**400), "5s", "500ms", "7d", "8d", 604800000, 604800001, "1ms", 0.001,
             "10MB", "1TB", "1025GB", "64K", "16MB", "17MB", True, False, "on-failure", "SIGTERM", "TERM", 15, 99,
             [0, 1], [256], "json", "raw", "daily", "0 3 * * *", "61 * * * *", "%H:%M", "YYYY", "all", 10, "14d",
             "3651d", ["ssn"], ["(a"], ["x+"], "tcp://127.0.0.1:0", "unix:/tmp/corral-fz.sock",
             "unix:/tmp/" + "s" * 100, ["tcp://127.0.0.1:0"], "notify", {"http": "/h", "port": 80},
             {"tcp": True, "interval": 0}, {"cmd": ["true"], "timeout": "1s"}, "PORT", ["db"], "rolling", "restart",
             "app.py", ".venv", "/tmp", "/dev/zero", "/nonexistent", ".env", "out.log", "root", "nobody", "0",
             {"A": "1"}, {"A": "b\0"}, ["--port", 80], "a b 'c", "python3", "none", "-u", "api", "default"]


@st.composite
def app_tables(draw: st.DrawFn) -> Any:
    plausible = draw(st.integers(0, 3)) > 0  # three in four: one bad value at most, most often none
    names = st.sampled_from(["web", "api", "w-1"]) if plausible else st.sampled_from(["all", "1", ""]) | st.text()
    table: dict[str, Any] = {"name": draw(names)}
    if plausible:
        table["cmd"] = ["sleep", "1"]
    else:
        table["cmd" if draw(st.booleans()) else "script"] = draw(st.sampled_from(["app.py", "/bin/true"]) | json_values)
    values = st.sampled_from(PLAUSIBLE) if plausible else json_values
    keys = st.sampled_from(KEYS) if plausible else st.sampled_from(KEYS) | st.text(max_size=10)
    table.update(draw(st.dictionaries(keys, values, max_size=2 if plausible else 5)))
    return table


@st.composite
def documents(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    doc: dict[str, Any] = {"apps": draw(st.lists(app_tables(), min_size=1, max_size=3))}
    doc.update(draw(st.dictionaries(st.sampled_from(APP_DEFAULT_KEYS + ("deploy", "bogus")), json_values, max_size=2)))
    return doc


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    return '""'


def as_toml(doc: Any) -> str:
    if not isinstance(doc, dict):
        return f"apps = {toml_value(doc)}\n"
    top = "".join(f"{json.dumps(str(k))} = {toml_value(v)}\n" for k, v in doc.items() if k != "apps" and v is not None)
    apps = doc.get("apps") if isinstance(doc.get("apps"), list) else []
    tables = "".join("[[apps]]\n" + "".join(f"{json.dumps(str(k))} = {toml_value(v)}\n" for k, v in t.items()
                                              if v is not None) for t in apps if isinstance(t, dict))
    return top + tables


@st.composite
def files(draw: st.DrawFn) -> tuple[str, str]:
    suffix = draw(st.sampled_from([".toml", ".yaml", ".json"]))
    if draw(st.integers(0, 7)) == 0:  # raw text: truncated, garbled, hostile
        return suffix, draw(st.text(max_size=300) | st.sampled_from(HOSTILE_TEXT))
    doc = draw(documents())
    if suffix == ".json":
        return suffix, json.dumps(doc)
    if suffix == ".yaml":
        return suffix, yaml.safe_dump(doc, allow_unicode=True)
    return suffix, as_toml(doc)


def validate_within(path: str) -> list[str] | BaseException | None:
    """validate_file's answer, the exception it raised, or None when it did not finish in time."""
    box: list[Any] = []

    def work() -> None:
        try:
            box.append(validate_file(path, check_files=True))
        except BaseException as exc:  # reported as a failure
            box.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(DEADLINE)
    return box[0] if box else None


def test_config_fuzzer(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    tally = Tally("config fuzzer")

    @fuzz_settings(100)
    @given(files())
    def one(file: tuple[str, str]) -> None:
        suffix, text = file
        path = tmp_path / f"eco{suffix}"
        path.write_text(text, errors="surrogatepass")
        tally.cases += 1
        answer = validate_within(str(path))
        if answer is None:
            tally.fail("hangs", text)
        elif isinstance(answer, BaseException):
            tally.fail("tracebacks", (text, answer))
        elif any("\n" in m or not m.startswith(f"{path}:") for m in answer):
            tally.fail("wrong", (text, answer))
        elif answer:
            tally.saw("refused")
        else:
            tally.saw("valid")
            for spec in load_file(str(path)):
                try:
                    AppSpec.from_dict(json.loads(json.dumps(spec)))
                except ValueError as exc:  # the CLI accepted what the daemon refuses
                    tally.fail("wrong", (text, str(exc)))

    one()
    tally.report(request)
    tally.assert_clean()
