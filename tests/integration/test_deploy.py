"""``corral deploy`` against a real daemon, a real git repository made here and a real HTTP load:
releases, the atomic switch, automatic rollback on a liveness failure, a canary that crashes on
a code bug, and the bad inputs (one line each, the live release untouched)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import APPS, Corral, wait_until
from tests.loadgen import Load

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, version: str, breaks: str = "") -> str:
    """A new commit of the deployable app: VERSION, and BREAK (health | crash) for a bad one."""
    (repo / "VERSION").write_text(version + "\n")
    if breaks:
        (repo / "BREAK").write_text(breaks + "\n")
    elif (repo / "BREAK").exists():
        (repo / "BREAK").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"v{version}")
    return git(repo, "rev-parse", "HEAD")


def make_repo(workdir: Path) -> Path:
    repo = workdir / "repo"
    repo.mkdir()
    subprocess.run([*GIT, "init", "-q", str(repo)], check=True)
    (repo / "server.py").write_text((APPS / "deployable" / "server.py").read_text())
    commit(repo, "1")
    return repo


def ecosystem(workdir: Path, repo: Path | str, extra: str = "", path: str | None = None, build: str = "") -> str:
    root = path or str(workdir / "srv")
    body = f"""
[deploy]
repo = "{repo}"
ref = "main"
path = "{root}"
shared = ["logs/"]
build = [{build or '"test -f VERSION"'}]
bake = "2s"
{extra}

[[apps]]
name = "web"
script = "server.py"
cwd = "{root}/current"
instances = 2
listen = "tcp://127.0.0.1:0"
wait_ready = true
kill_timeout = "3s"
restart_delay = "0.5s"
health = {{ http = "/healthz", interval = "0.3s", timeout = "1s", failures = 2, start_period = "0s" }}
"""
    file = workdir / "corral.toml"
    file.write_text(body)
    return str(file)


def port_of(corral: Corral) -> int:
    info = json.loads(corral.run("describe", "web", "--json").stdout)
    return int(info["listen"][0].rsplit(":", 1)[1])


def versions(port: int, n: int = 20) -> set[str]:
    seen = set()
    for _ in range(n):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            seen.add(response.read().decode().split()[0])
    return seen


def live(workdir: Path) -> str:
    return os.readlink(workdir / "srv" / "current")


def pids(corral: Corral) -> dict[int, int]:
    return {r["instance"]: r["pid"] for r in corral.ls() if r["name"] == "web"}


def test_deploy_v2_under_load_then_v3_rolls_back_then_a_crashing_canary_rolls_back(
        corral: Corral, workdir: Path) -> None:
    repo = make_repo(workdir)
    file = ecosystem(workdir, repo)
    first = corral.run("deploy", "--file", file, timeout=120)
    assert "started web (2 instance(s))" in first.stdout and "deployed " in first.stdout
    v1 = live(workdir)
    assert v1.startswith("releases/") and v1.endswith("-" + git(repo, "rev-parse", "HEAD")[:7])
    port = port_of(corral)
    assert versions(port) == {"version=1"}
    assert (workdir / "srv" / v1 / "logs").is_symlink()  # a shared dir, linked into the release

    commit(repo, "2")
    with Load(port, threads=4) as load:
        load.wait_requests(100)
        result = corral.run("deploy", "--file", file, timeout=120)
        load.wait_requests(load.result.ok + 100)
    assert load.result.failed == 0, load.result.failures
    v2 = live(workdir)
    assert v2 != v1 and result.stdout.count("reloaded web[") == 2
    assert versions(port) == {"version=2"}

    commit(repo, "3", breaks="health")
    bad = corral.run("deploy", "--file", file, "--bake", "30s", check=False, timeout=120)
    assert bad.returncode != 0
    line = bad.stderr.strip()
    assert "\n" not in line and line.startswith("corral: deploy of ") and "failed its liveness probe" in line, line
    assert line.endswith(f"rolled back to {v2.split('/')[1]}"), line
    assert live(workdir) == v2
    wait_until(lambda: versions(port) == {"version=2"}, 20, "v2 serving every request again")
    alerts = [e for e in corral.events("web") if e["kind"] == "alert" and e["data"]["kind"] == "deploy"]
    assert alerts and alerts[-1]["message"].startswith("critical: web: deploy of ") and "liveness" in alerts[-1]["message"]
    released = json.loads(corral.run("releases", "--file", file, "--json").stdout)["releases"]
    assert [r["state"] for r in released] == ["bad", "live", "previous"]

    commit(repo, "4", breaks="crash")
    before = pids(corral)
    replaced: list[int] = []
    stop = threading.Event()

    def watch_peer() -> None:  # instance 1 must keep its pid through the whole canary
        while not stop.is_set():
            now = pids(corral).get(1)
            if now != before[1]:
                replaced.append(now or 0)
            stop.wait(0.2)

    watcher = threading.Thread(target=watch_peer)
    watcher.start()
    try:
        canary = corral.run("deploy", "--file", file, "--canary", "1", "--bake", "30s", check=False, timeout=120)
    finally:
        stop.set()
        watcher.join()
    assert canary.returncode != 0
    line = canary.stderr.strip()
    assert "web[0] crashed on a code bug" in line and "TypeError" in line and "rolled back to" in line, line
    assert "baking 30s: watching instance(s) 0..0 of web" in canary.stdout
    assert replaced == [] and pids(corral)[1] == before[1]
    assert live(workdir) == v2
    wait_until(lambda: versions(port) == {"version=2"}, 20, "v2 serving every request after the canary")


def test_bad_input_is_one_line_and_leaves_the_live_release(corral: Corral, workdir: Path) -> None:
    repo = make_repo(workdir)
    file = ecosystem(workdir, repo)
    corral.run("deploy", "--file", file, timeout=120)
    good = live(workdir)
    port = port_of(corral)

    def refused(path: str, *args: str) -> str:
        result = corral.run("deploy", "--file", path, *args, check=False, timeout=120)
        assert result.returncode != 0, result.stdout
        assert live(workdir) == good and versions(port, 4) == {"version=1"}
        line = result.stderr.strip()
        assert "\n" not in line and "Traceback" not in line, line
        return line

    assert refused(ecosystem(workdir, workdir / "nope")) == f"corral: deploy: repo {workdir / 'nope'} does not exist"
    wrong_ref = Path(ecosystem(workdir, repo))
    wrong_ref.write_text(wrong_ref.read_text().replace('ref = "main"', 'ref = "v9"'))
    assert refused(str(wrong_ref)) == f'corral: deploy: ref "v9" does not exist in {repo}'
    line = refused(ecosystem(workdir, repo, build='"echo building", "exit 3"'))
    assert line.startswith("corral: deploy: build `exit 3` failed with exit status 3 (its output is in ")
    assert "building" in (workdir / "srv" / "deploy.log").read_text()
    line = refused(ecosystem(workdir, repo, build='"sleep 30"', extra='build_timeout = "1s"'))
    assert line.startswith("corral: deploy: build `sleep 30` took more than 1s and was killed")
    assert len(os.listdir(workdir / "srv" / "releases")) == 1  # failed builds leave no release behind
    line = refused(ecosystem(workdir, repo, path="/proc/corral-deploy"))
    assert line.startswith("corral: deploy: path /proc/corral-deploy is not writable: ")

    ecosystem(workdir, repo, build='"sleep 5"')
    slow = subprocess.Popen([sys.executable, "-m", "corral", "deploy", "--file", file], env=corral.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = workdir / "srv" / ".corral-deploy.lock"
        wait_until(lambda: lock.exists() and lock.read_text().startswith("deploy by "), 20, "the first deploy's lock")
        line = refused(file)
        assert line.startswith("corral: deploy: another deploy is running here (deploy by ") and "pid " in line
    finally:
        _, err = slow.communicate(timeout=120)
    assert slow.returncode == 0, err


def test_remote_keys_point_to_the_ansible_export(corral: Corral, workdir: Path) -> None:
    js = workdir / "ecosystem.config.js"
    js.write_text("module.exports = {apps: [{name: 'web', script: 'server.py', cwd: '/srv/x/current'}],"
                  " deploy: {production: {user: 'app', host: ['h1'], repo: 'git@x:y.git', ref: 'origin/main',"
                  " path: '/srv/x'}}}")
    if subprocess.run(["which", "node"], capture_output=True).returncode != 0:
        pytest.skip("node is not installed (PM2's ecosystem.config.js is evaluated with node)")
    result = corral.run("deploy", "production", "--file", str(js), check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"corral: {js}: deploy.production: remote deploys (host/user) go through "
                                     "`corral export ansible`: its playbook runs `corral deploy` on each host")


def test_a_plain_directory_deploys_prunes_and_rolls_back_by_hand(corral: Corral, workdir: Path) -> None:
    src = workdir / "src"
    src.mkdir()
    (src / "server.py").write_text((APPS / "deployable" / "server.py").read_text())
    file = ecosystem(workdir, src, extra='keep_releases = 2\npost-deploy = "cat VERSION >> $SHARED/posted"')
    made = []
    for version in "123":
        (src / "VERSION").write_text(version + "\n")
        corral.run("deploy", "--file", file, timeout=120)
        made.append(live(workdir).split("/")[1])
    assert all(name.endswith(("-dir", ".2", ".3")) for name in made)
    assert (workdir / "srv" / "shared" / "posted").read_text().split() == ["1", "2", "3"]
    assert sorted(os.listdir(workdir / "srv" / "releases")) == sorted(made[1:])  # pruned to keep_releases
    port = port_of(corral)
    assert versions(port) == {"version=3"}

    back = corral.run("rollback", "--file", file, timeout=120)
    assert back.stdout.splitlines()[0] == f"current -> releases/{made[1]} (was {made[2]})"
    assert live(workdir) == f"releases/{made[1]}"
    assert versions(port) == {"version=2"}
    listed = corral.run("releases", "--file", file).stdout.splitlines()
    assert listed[0].split() == [made[2], "dir", "bad"] and listed[1].split() == ["*", made[1], "dir", "live"]
    again = corral.run("rollback", "--file", file, check=False)
    assert again.returncode == 2
    assert again.stderr.strip() == f"corral: rollback: there is no release before {made[1]} to go back to"
    assert live(workdir) == f"releases/{made[1]}"
    steps = [e["data"]["step"] for e in corral.events("web") if e["kind"] == "deploy"]
    assert steps.count("done") == 3 and steps[-1] == "rollback"


def test_pm2s_deploy_environment_in_an_ecosystem_config_js(corral: Corral, workdir: Path) -> None:
    if subprocess.run(["which", "node"], capture_output=True).returncode != 0:
        pytest.skip("node is not installed (PM2's ecosystem.config.js is evaluated with node)")
    repo = make_repo(workdir)
    srv = workdir / "srv"
    js = workdir / "ecosystem.config.js"
    js.write_text(f"""module.exports = {{
  apps: [{{ name: "web", script: "server.py", interpreter: "{sys.executable}", cwd: "{srv}/current", instances: 1,
           listen: "tcp://127.0.0.1:0", wait_ready: true, kill_timeout: 3000 }}],
  deploy: {{
    production: {{ repo: "{repo}", ref: "origin/main", path: "{srv}", "post-deploy": "echo posted > $SHARED/p" }},
    staging: {{ repo: "{repo}", ref: "main", path: "{workdir / 'staging'}" }},
  }},
}};
""")
    result = corral.run("deploy", "production", "--file", str(js), "--bake", "1s", "--json", timeout=120)
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["previous"] is None and summary["apps"] == ["web"]
    assert live(workdir) == f"releases/{summary['release']}"
    assert (srv / "shared" / "p").read_text() == "posted\n"
    assert versions(port_of(corral)) == {"version=1"}
    assert corral.run("deploy", "production", "curr", "--file", str(js)).stdout == summary["release"] + "\n"
    listed = json.loads(corral.run("deploy", "production", "list", "--file", str(js), "--json").stdout)
    assert [r["state"] for r in listed["releases"]] == ["live"]
    assert corral.run("deploy", "staging", "setup", "--file", str(js)).stdout == f"set up {workdir / 'staging'} " \
        "(releases/, shared/)\n"
    assert (workdir / "staging" / "releases").is_dir() and not (workdir / "staging" / "current").exists()
    both = corral.run("deploy", "--file", str(js), check=False)
    assert both.returncode == 2
    assert both.stderr.strip() == f"corral: {js}: deploy: pick an environment: production, staging " \
                                  "(`corral deploy production`)"


def test_a_release_that_is_never_ready_is_switched_back_and_no_instance_is_replaced(
        corral: Corral, workdir: Path) -> None:
    repo = make_repo(workdir)
    commit(repo, "0", breaks="boot")
    file = ecosystem(workdir, repo)
    first = corral.run("deploy", "--file", file, check=False, timeout=120)
    assert first.returncode == 1
    assert re.search(r"failed: web\[[01]\] exited before it was ready \(see `corral logs web`\); there is no "
                     r"previous release to go back to; deleted web$", first.stderr.strip()), first.stderr
    assert not (workdir / "srv" / "current").exists() and not [r for r in corral.ls() if r["name"] == "web"]
    commit(repo, "1")
    corral.run("deploy", "--file", file, timeout=120)
    good = live(workdir)
    before = pids(corral)
    commit(repo, "2", breaks="boot")
    result = corral.run("deploy", "--file", file, check=False, timeout=120)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith("corral: deploy of ") and 'reload of "web" stopped: new instance 0 (pid ' in line, line
    assert line.endswith(f"the old instances keep serving; rolled back to {good.split('/')[1]}"), line
    assert live(workdir) == good and pids(corral) == before
    assert versions(port_of(corral)) == {"version=1"}
    bad = result.stdout.split("current -> releases/")[1].split()[0]
    assert (workdir / "srv" / "releases" / bad / "BAD_RELEASE").read_text().endswith(": rolled back\n")
