"""Monitoring against a real daemon: samples in ls/describe/metrics, a real CPU burner crossing
its threshold, a real leaking server replaced under load (max_memory_restart), settings kept."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import APPS, Corral, wait_until
from tests.loadgen import Load


def write(workdir: Path, body: str) -> str:
    path = workdir / "corral.toml"
    path.write_text(body)
    return str(path)


def kinds(corral: Corral, name: str, kind: str) -> list[dict]:
    return [e for e in corral.events(name) if e["kind"] == kind]


def test_a_cpu_burner_crosses_its_threshold_within_two_intervals(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, f"""
monitor_interval = "0.5s"
[[apps]]
name = "burn"
cmd = ["{sys.executable}", "-c", "while True: pass"]
thresholds = {{ cpu = "10%", samples = 2 }}
"""))
    crossed = wait_until(lambda: kinds(corral, "burn", "threshold"), 10, "a threshold event")[0]
    spawned = kinds(corral, "burn", "spawn")[0]
    assert crossed["data"]["metric"] == "cpu" and crossed["data"]["cleared"] is False
    assert crossed["data"]["value"] >= 10 and crossed["data"]["limit"] == 10.0 and crossed["data"]["samples"] == 2
    assert crossed["ts"] - spawned["ts"] <= 2 * 0.5 + 1, (crossed, spawned)
    assert crossed["instance"] == 0
    corral.run("stop", "burn")  # the instance gone: the alert is cleared, not left open
    cleared = wait_until(lambda: [e for e in kinds(corral, "burn", "threshold") if e["data"]["cleared"]], 10,
                         "the threshold cleared")
    assert cleared[0]["data"]["metric"] == "cpu"


def test_samples_show_in_ls_describe_and_metrics(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, f"""
monitor_interval = "0.3s"
[[apps]]
name = "fam"
script = "{APPS / 'family.py'}"
args = ["{workdir / 'pids'}"]
"""))
    row = wait_until(lambda: (r := corral.row("fam")).get("sample") and r, 10, "a sample in ls")
    sample = row["sample"]
    assert sample["pid"] == row["pid"] and sample["rss"] > 0 and sample["threads"] >= 2 and sample["fds"] >= 3
    assert sample["procs"] == 2  # the whole tree: the main process and its child
    assert row["memory_bytes"] == sample["rss"]
    described = json.loads(corral.run("describe", "fam", "--json").stdout)
    assert described["instances"][0]["sample"]["pid"] == row["pid"]
    assert described["settings"]["monitor_interval"] == 0.3
    wait_until(lambda: len(json.loads(corral.run("metrics", "fam", "--since", "30s", "--json").stdout)["history"]["instances"]
                           .get("fam:0", [])) >= 2, 10, "two points of history")
    report = json.loads(corral.run("metrics", "--json").stdout)
    assert "/" in report["mounts"] and not any(m.startswith(("/proc", "/sys", "/dev/shm")) for m in report["mounts"])
    assert 0 <= report["host"]["memory_available"] <= 100
    text = corral.run("metrics", "fam", "--since", "5m").stdout
    assert "fam" in text and "host  cpu" in text and "disk  /" in text


def test_settings_are_checked_kept_and_survive_a_daemon_restart(corral: Corral, workdir: Path) -> None:
    bad = write(workdir, 'thresholds = { cpu = "85 %" }\n[[apps]]\nname = "a"\ncmd = ["sleep", "60"]\n')
    result = corral.run("validate", bad, check=False)
    assert result.returncode != 0
    assert f'{bad}: thresholds.cpu: "85 %" is not a percentage (write it like "80%", no space)' in result.stdout + result.stderr
    bad = write(workdir, 'thresholds = { process_memory = "2 gigs" }\n[[apps]]\nname = "a"\ncmd = ["sleep", "60"]\n')
    result = corral.run("validate", bad, check=False)
    assert "thresholds.process_memory: \"2 gigs\" is not a memory size" in result.stdout + result.stderr
    corral.run("start", write(workdir, 'monitor_interval = "2s"\nthresholds = { disk = "90%" }\n'
                                       '[[apps]]\nname = "a"\ncmd = ["sleep", "600"]\n'))
    assert json.loads(corral.run("ping", "--json").stdout)["settings"] == {"monitor_interval": 2.0,
                                                                           "thresholds": {"disk": 90.0}}
    corral.expect_daemon_restart()
    corral.run("kill")
    corral.run("start", "--name", "b", "--", "sleep", "600")
    ping = json.loads(corral.run("ping", "--json").stdout)
    assert ping["settings"] == {"monitor_interval": 2.0, "thresholds": {"disk": 90.0}}
    assert ping["monitor"]["interval"] == 2.0


def test_a_leaking_server_is_replaced_gracefully_under_load(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, f"""
monitor_interval = "0.3s"
[[apps]]
name = "leaky"
script = "{APPS / 'leaky.py'}"
listen = "tcp://127.0.0.1:0"
max_memory_restart = "80M"
thresholds = {{ samples = 2 }}
env = {{ LEAK_MB = "8", LEAK_EVERY = "0.1", LEAK_MAX_MB = "200" }}
"""))
    info = json.loads(corral.run("describe", "leaky", "--json").stdout)
    port = int(info["listen"][0].rsplit(":", 1)[1])
    first = wait_until(lambda: (r := corral.row("leaky")).get("status") == "online" and r["pid"], 10, "online")
    with Load(port, threads=4) as load:
        load.wait_requests(50)
        note = wait_until(lambda: kinds(corral, "leaky", "memory_restart"), 20, "the memory restart")[0]
        done = wait_until(lambda: kinds(corral, "leaky", "memory_restarted"), 30, "the replacement")[0]
        load.wait_requests(load.result.ok + 50)
    assert load.result.failed == 0, load.result.failures
    assert note["data"]["pid"] == first and note["data"]["limit"] == 80 * 1024**2
    assert note["data"]["rss"] > 80 * 1024**2 and note["data"]["samples"] == 2
    assert "over 80.0 MiB for 2 sample(s)" in note["message"]
    assert "new instance first" in done["message"] and f"pid {first} ->" in done["message"]
    assert not [e for e in corral.events("leaky") if e["kind"] == "kill"]  # never SIGKILL
