"""`[[jobs]]` (and `jobs:` in YAML/JSON): normalized like apps, one line per problem naming the job
and field; the daemon's own check of what it receives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.config.convert import Invalid
from corral.config.errors import ConfigError
from corral.config.host import to_host
from corral.config.jobs import checked_jobs
from corral.config.load import load_file


def jobs_of(path: Path) -> list[dict]:
    host: dict = {}
    load_file(str(path), host=host)
    return host["jobs"]


def test_a_yaml_file_of_jobs_only_with_the_app_rules(tmp_path: Path) -> None:
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    path = tmp_path / "corral.yaml"
    path.write_text("jobs:\n  - name: backup\n    script: backup.py\n    cron: '@daily'\n    timezone: Europe/Berlin\n"
                    "    venv: venv\n    retries: 2\n    retry_delay: 5s\n    overlap: queue\n    jitter: 30s\n")
    [job] = jobs_of(path)
    assert (job["cron"], job["timezone"], job["retries"], job["retry_delay"], job["overlap"], job["jitter"]) == (
        "0 0 * * *", "Europe/Berlin", 2, 5.0, "queue", 30.0)
    assert job["spec"]["script"] == str(tmp_path / "backup.py")
    assert job["spec"]["venv"] == str(tmp_path / "venv") and job["spec"]["cwd"] == str(tmp_path)
    assert to_host({"jobs": [job]})["jobs"] == [job]  # the daemon accepts what the CLI made


def test_env_from_shares_the_apps_environment_the_jobs_own_keys_win(tmp_path: Path) -> None:
    path = tmp_path / "corral.json"
    path.write_text(json.dumps({"apps": [{"name": "api", "cmd": ["x"], "env": {"A": "1"}, "cwd": "/srv"}],
                                "jobs": [{"name": "j", "cmd": ["y"], "interval": "90s", "env_from": "api",
                                          "env": {"B": "2"}}]}))
    [job] = jobs_of(path)
    assert job["interval"] == 90.0
    assert job["spec"]["env"] == {"B": "2"}  # its own env replaces the app's (as keys do)
    assert job["spec"]["cwd"] == "/srv"


@pytest.mark.parametrize("table, line", [
    ('name = "j"\ncmd = ["x"]', 'jobs[0] "j": no trigger: give cron, interval, at or on_start = true'),
    ('name = "j"\ncmd = ["x"]\ninterval = "1s"\ninstances = 2',
     'jobs[0] "j": instances: is an app setting, not a job\'s (a job runs once per trigger)'),
    ('name = "j"\ncmd = ["x"]\ninterval = "1s"\novrlap = "skip"', 'jobs[0] "j": ovrlap: unknown key (did you mean "overlap"?)'),
    ('name = "j"\ncmd = ["x"]\ncron = "* * * * *"\ntimezone = "Mars/Olympus"',
     'jobs[0] "j": timezone: "Mars/Olympus" is not a time zone (an IANA name like "Europe/Berlin" or "UTC")'),
    ('name = "j"\ncmd = ["x"]\ninterval = "1s"\noverlap = "twice"',
     'jobs[0] "j": overlap: "twice" is not an overlap rule ("skip", "queue" or "replace")'),
    ('name = "j"\ninterval = "1s"', 'jobs[0] "j": one of "script" or "cmd" is required'),
])
def test_one_line_per_problem(tmp_path: Path, table: str, line: str) -> None:
    path = tmp_path / "corral.toml"
    path.write_text(f"[[jobs]]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        load_file(str(path))
    assert caught.value.messages == [f"{path}: {line}"]


def test_two_jobs_of_one_name(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text('[[jobs]]\nname = "j"\ncmd = ["x"]\non_start = true\n[[jobs]]\nname = "j"\ncmd = ["x"]\n'
                    'on_start = true\n')
    with pytest.raises(ConfigError) as caught:
        load_file(str(path))
    assert caught.value.messages == [f'{path}: jobs[1] "j": name: is already used by jobs[0] (names must be unique)']


def test_the_daemon_refuses_a_tampered_job(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text('[[jobs]]\nname = "j"\ncmd = ["x"]\ninterval = "5s"\n')
    [job] = jobs_of(path)
    for change, problem in ((("cron", "* * * * *"), "has not exactly one trigger"),
                            (("cron", "61 * * * *"), "cron: is not a valid cron expression (bad minute)"),
                            (("interval", -1), "interval: is not a number of seconds"),
                            (("overlap", "twice"), "overlap: is not skip, queue or replace"),
                            (("spec", {**job["spec"], "kill_timeout": "soon"}), "spec: kill_timeout")):
        bad = {**job, change[0]: change[1]}
        with pytest.raises(ValueError) as caught:
            to_host({"jobs": [bad]}, "host")
        assert str(caught.value).startswith(f"host: jobs[0]: {problem}")
    with pytest.raises(Invalid) as refused:
        checked_jobs([{**job, "extra": 1}])
    assert refused.value.text == "is not a job (as corral validate writes it)"


def test_a_job_named_like_an_app_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text('[[apps]]\nname = "api"\ncmd = ["x"]\n[[jobs]]\nname = "api"\ncmd = ["y"]\non_start = true\n')
    with pytest.raises(ConfigError) as caught:
        load_file(str(path))
    assert caught.value.messages == [f'{path}: jobs[0] "api": name: is already the name of an app of this file '
                                     "(give the job its own: they would share log files)"]


def test_what_a_job_names_on_this_machine_is_checked_like_an_apps(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text('[[jobs]]\nname = "j"\nscript = "nope.py"\ninterval = "1m"\n')
    load_file(str(path))  # the file itself is valid
    with pytest.raises(ConfigError) as caught:
        load_file(str(path), check_files=True)  # what `corral start` and `corral validate` check
    assert caught.value.messages == [f'{path}: jobs[0] "j": script: "{tmp_path}/nope.py" does not exist']
