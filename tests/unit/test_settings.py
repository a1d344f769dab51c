"""Typed settings declared once: FIELDS drives AppSpec, the start flags, the README tables and the
restart/rotation policies; the cross-field rules of the normalizer."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from corral.config import docs
from corral.config.fields import FIELD_BY_NAME, FIELDS, SPEC_KEYS
from corral.config.flags import START_FLAGS
from corral.config.normalize import normalize_app
from corral.config.policies import default_policy, restart_policy
from corral.config.spec import KEYS, AppSpec
from corral.lifecycle.policy import Policy
from corral.logs.rotation import RotationPolicy

README = docs.ROOT / "README.md"


def defaults() -> AppSpec:
    return AppSpec(name="a", cwd="/")


# --- generation ---------------------------------------------------------------------------------

def test_generated_parts_are_up_to_date() -> None:
    assert docs.outdated() == [], "run: python -m corral.config.docs --write"


def test_a_changed_declaration_makes_them_out_of_date(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = tuple(f._replace(default=6.0) if f.name == "kill_timeout" else f for f in FIELDS)
    monkeypatch.setattr(docs, "FIELDS", changed)
    assert docs.outdated() == ["corral/config/spec.py"]
    changed = tuple(f._replace(meaning="something else", flag=("--kt",)) if f.name == "kill_timeout" else f
                    for f in FIELDS)
    monkeypatch.setattr(docs, "FIELDS", changed)
    assert docs.outdated() == ["corral/config/flags.py", "README.md"]


def test_check_command_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert docs.main(["--check"]) == 0
    assert docs.main(["--nope"]) == 2


def test_fields_declare_what_the_generator_needs() -> None:
    for f in FIELDS:
        assert f.doc and f.type and f.table in ("row", "+", ""), f.name
        if f.table == "row":
            assert f.meaning, f"{f.name}: a README row needs a meaning"
        assert all(option.startswith("-") for option in f.flag), f.name
    assert FIELDS[0].table == "row"
    assert {f.name for f in FIELDS if f.default is None and "None" not in f.type} == {"name", "cwd"}


# --- the README ----------------------------------------------------------------------------------

def _table_rows(text: str, begin: str) -> list[list[str]]:
    body = text.split(begin, 1)[1].split("\n", 1)[1].split("<!-- end of", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in body.strip().splitlines()[2:]]


def test_readme_defaults_agree_with_fields() -> None:
    """A README default written as a value (`5s`, `true`, 1) converts to the declared default."""
    checked = 0
    for f in FIELDS:
        shown = f.shown.strip("`")
        if not f.shown or (f.shown == shown and not shown.isdigit()):
            continue  # prose ("unlimited", "file name") or no default shown
        try:
            raw = json.loads(shown)
        except ValueError:
            raw = shown
        assert f.convert(raw) == f.default, f.name
        checked += 1
    assert checked >= 15


def test_readme_documents_every_key() -> None:
    text = README.read_text(encoding="utf-8")
    in_table = " ".join(row[0] for row in _table_rows(text, "<!-- keys: "))
    for f in FIELDS:
        if f.table:
            assert f"`{f.name}`" in in_table, f.name
        else:  # documented in the prose (cluster mode)
            assert re.search(rf"`{f.name}\b", text), f"{f.name} is not documented in the README"


def test_readme_flag_table_lists_every_flag() -> None:
    rows = _table_rows(README.read_text(encoding="utf-8"), "<!-- flags: ")
    assert [row[1].strip("`").split(" ")[0] for row in rows] == [name for name, *_ in START_FLAGS]
    assert ["`-i`, `--instances N`", "`instances`"] in rows
    assert ["`--no-autorestart`", "`autorestart = false`"] in rows


# --- AppSpec ------------------------------------------------------------------------------------

def test_appspec_has_every_key_in_order() -> None:
    assert KEYS == SPEC_KEYS
    assert AppSpec.__slots__ == KEYS  # type: ignore[attr-defined]


def test_appspec_defaults_are_the_declared_ones() -> None:
    spec = defaults()
    for f in FIELDS:
        if f.name not in ("name", "cwd"):
            assert getattr(spec, f.name) == f.default, f.name
    assert defaults().env is not defaults().env  # no shared mutable defaults


def test_round_trip_with_the_stored_json(tmp_path: Path) -> None:
    data = normalize_app({"script": "app.py", "instances": 3, "ready": {"http": "/h"}, "listen": "tcp://127.0.0.1:0",
                          "env": {"A": "1"}}, where="c", base_dir=str(tmp_path), source=str(tmp_path / "c.toml"))
    spec = AppSpec.from_dict(data)
    assert spec.instances == 3 and spec.ready == data["ready"] and spec.source == str(tmp_path / "c.toml")
    assert spec.to_dict() == data
    stored = json.loads(json.dumps(spec.to_dict()))
    assert AppSpec.from_dict(stored) == spec
    copy = spec.to_dict()
    copy["env"]["B"] = "2"
    assert spec.env == {"A": "1"}  # to_dict copies


def test_specs_stored_by_an_older_corral_load_with_the_defaults() -> None:
    old = {"name": "api", "namespace": "default", "script": "/srv/app.py", "cmd": None, "args": [],
           "cwd": "/srv", "instances": 2, "env": {}, "autorestart": "always", "kill_timeout": 3.0,
           "source": None, "ignored": [], "base_env_was_here": {"X": "1"}}
    spec = AppSpec.from_dict(old)
    assert (spec.name, spec.instances, spec.kill_timeout) == ("api", 2, 3.0)
    assert spec.listen == [] and spec.ready is None and spec.log_max_size == FIELD_BY_NAME["log_max_size"].default
    assert spec.reload == "rolling" and spec.env_name is None


@pytest.mark.parametrize("bad", [{}, {"name": 3, "cwd": "/"}, {"name": "a"}, ["a"]])
def test_from_dict_refuses_what_is_not_a_spec(bad: Any) -> None:
    with pytest.raises(ValueError, match="not an app spec"):
        AppSpec.from_dict(bad)


def test_appspec_is_frozen_and_changed_by_copy() -> None:
    spec = defaults()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.instances = 2  # type: ignore[misc]
    assert spec.with_changes(instances=4).instances == 4 and spec.instances == 1


# --- policies -----------------------------------------------------------------------------------

def test_policy_values_come_from_the_spec() -> None:
    policy = restart_policy(defaults())
    declared = {f.name: f.default for f in FIELDS}
    assert policy.autorestart == declared["autorestart"]
    assert policy.min_uptime == declared["min_uptime"]
    assert policy.max_restarts == declared["max_restarts"]
    assert policy.restart_delay == declared["restart_delay"]
    assert policy.backoff_base == declared["exp_backoff_restart_delay"]
    assert policy.kill_timeout == declared["kill_timeout"]
    assert policy.stop_signal == declared["stop_signal"]
    assert policy.ready_delay == declared["listen_timeout"]
    assert policy.ready_timeout == declared["ready_timeout"]
    assert policy.watchdog == declared["watchdog"]
    assert policy.stop_exit_codes == frozenset(declared["stop_exit_codes"])
    changed = restart_policy(defaults().with_changes(kill_timeout=1.5, autorestart="never", stop_exit_codes=[3]))
    assert (changed.kill_timeout, changed.autorestart, changed.stop_exit_codes) == (1.5, "never", frozenset({3}))
    assert default_policy(kill_timeout=9.0).kill_timeout == 9.0


def test_rotation_values_come_from_the_spec() -> None:
    policy = RotationPolicy.from_spec(defaults())
    assert policy.max_size == FIELD_BY_NAME["log_max_size"].default
    assert policy.retain == FIELD_BY_NAME["log_retain"].default
    assert policy.max_age == FIELD_BY_NAME["log_max_age"].default
    assert policy.compress == FIELD_BY_NAME["log_compress"].default
    assert policy.schedule is None


@pytest.mark.parametrize("cls, not_settings", [(Policy, {"backoff_cap", "crash_loop_threshold"}),
                                               (RotationPolicy, set())])
def test_policies_restate_no_default(cls: type, not_settings: set[str]) -> None:
    restated = [f.name for f in dataclasses.fields(cls)
                if f.name not in not_settings and f.default is not dataclasses.MISSING]
    assert restated == []


@pytest.mark.parametrize("raw, mode", [
    ({}, "auto"), ({"listen": "tcp://127.0.0.1:0"}, "delay"), ({"wait_ready": True}, "notify"),
    ({"ready": "notify"}, "notify"), ({"ready": {"cmd": ["true"]}}, "probe"),
    ({"ready": {"tcp": True}, "listen": "tcp://127.0.0.1:0"}, "probe"),
])
def test_ready_mode(tmp_path: Path, raw: dict[str, Any], mode: str) -> None:
    spec = AppSpec.from_dict(normalize_app({"cmd": ["x"], **raw}, where="c", base_dir=str(tmp_path)))
    assert restart_policy(spec).ready_mode == mode
