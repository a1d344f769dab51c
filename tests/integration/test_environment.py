"""A fresh environment at every start: env, env_<name>, env_file edits, --update-env, masked secrets."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Corral, app, wait_until


def records(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def test_env_file_edits_apply_at_the_next_restart(corral: Corral, workdir: Path) -> None:
    out = workdir / "rec.jsonl"
    envfile = workdir / ".env"
    envfile.write_text("COLOR=red\nexport SHAPE='square'\n")
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "e"
script = "{app('record.py')}"
args = ["{out}", "COLOR", "SHAPE", "PYTHONUNBUFFERED", "CORRAL_APP"]
env_file = ".env"
""")
    corral.run("start", "corral.toml", cwd=str(workdir))
    wait_until(lambda: records(out), what="first record")
    envfile.write_text("COLOR=green\n")
    corral.run("restart", "e")
    wait_until(lambda: len(records(out)) == 2, what="second record")
    first, second = (r["env"] for r in records(out))
    assert first == {"COLOR": "red", "SHAPE": "square", "PYTHONUNBUFFERED": "1", "CORRAL_APP": "e"}
    assert second == {"COLOR": "green", "SHAPE": None, "PYTHONUNBUFFERED": "1", "CORRAL_APP": "e"}


def test_update_env_rereads_the_ecosystem_and_drops_removed_variables(corral: Corral, workdir: Path) -> None:
    out = workdir / "rec.jsonl"
    toml = workdir / "corral.toml"
    body = f"""
[[apps]]
name = "u"
script = "{app('record.py')}"
args = ["{out}", "A", "B", "FROM_SHELL", "PYTHONUNBUFFERED"]
"""
    toml.write_text(body + 'env = { A = "1", B = "2", PYTHONUNBUFFERED = "0" }\n')
    corral.run("start", str(toml), env={"FROM_SHELL": "first"})
    wait_until(lambda: records(out), what="first record")
    toml.write_text(body + 'env = { A = "10" }\n')
    corral.run("restart", "u")  # without --update-env the stored config is used again
    wait_until(lambda: len(records(out)) == 2, what="plain restart")
    corral.run("restart", "u", "--update-env", env={"FROM_SHELL": "second"})
    wait_until(lambda: len(records(out)) == 3, what="restart --update-env")
    envs = [r["env"] for r in records(out)]
    assert envs[0] == {"A": "1", "B": "2", "FROM_SHELL": "first", "PYTHONUNBUFFERED": "0"}
    assert envs[1] == envs[0]
    assert envs[2] == {"A": "10", "B": None, "FROM_SHELL": "second", "PYTHONUNBUFFERED": "1"}


def test_describe_masks_secrets(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text("""
[[apps]]
name = "s"
cmd = ["sleep", "600"]
env = { API_KEY = "k-123", DB_PASSWORD = "hunter2", STRIPE_SECRET = "sk_live", GH_TOKEN = "ghp", PLAIN = "visible" }
""")
    corral.run("start", str(workdir / "corral.toml"))
    text = corral.run("describe", "s").stdout + corral.run("describe", "s", "--json").stdout
    for secret in ("k-123", "hunter2", "sk_live", "ghp"):
        assert secret not in text
    assert "PLAIN=visible" in text and "API_KEY=********" in text


def test_describe_masks_every_name_the_logs_redact(corral: Corral, workdir: Path) -> None:
    """One rule: the same names are masked by describe and redacted in the app's JSON log lines."""
    names = ("AUTHORIZATION", "COOKIE", "SESSION_ID", "SALT", "LOG_LEVEL")
    (workdir / "leak.py").write_text(
        "import json, os, time\n"
        f"print(json.dumps({{n: os.environ[n] for n in {names!r}}}), flush=True)\n"
        "time.sleep(600)\n")
    (workdir / "corral.toml").write_text("""
[[apps]]
name = "leak"
script = "leak.py"
env = { AUTHORIZATION = "Bearer-abc", COOKIE = "sid-42", SESSION_ID = "s-77", SALT = "pepper9", LOG_LEVEL = "info" }
""")
    corral.run("start", str(workdir / "corral.toml"))
    secrets = ("Bearer-abc", "sid-42", "s-77", "pepper9")
    text = corral.run("describe", "leak").stdout
    env = json.loads(corral.run("describe", "leak", "--json").stdout)["config"]["env"]
    assert env == {"AUTHORIZATION": "********", "COOKIE": "********", "SESSION_ID": "********",
                   "SALT": "********", "LOG_LEVEL": "info"}
    assert all(f"{n}=********" in text for n in names[:4]) and "LOG_LEVEL=info" in text
    line = wait_until(lambda: corral.log("leak").strip(), what="the app's JSON line")
    logged = json.loads(line[line.index("{"):])
    assert logged == {"AUTHORIZATION": "REDACTED", "COOKIE": "REDACTED", "SESSION_ID": "REDACTED",
                      "SALT": "REDACTED", "LOG_LEVEL": "info"}
    assert not any(s in text + line for s in secrets)
