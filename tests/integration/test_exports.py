"""``corral export``: the files pass the tools' own checks (Kubernetes' schemas, the compose-spec
schema, ``ansible-playbook --syntax-check``, ``systemd-analyze verify``), and every setting that
does not map is named on stderr, one line each."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, Corral

FILE = """
[[apps]]
name = "web"
cmd = ["python3", "-m", "uvicorn", "asgi_app:app", "--fd", "3"]
instances = 2
listen = "tcp://0.0.0.0:8000"
ready = { http = "/", interval = "500ms" }
health = { http = "/healthz", failures = 4, start_period = "20s" }
kill_timeout = "8s"
max_memory_restart = "300MB"
thresholds = { cpu = "80%", process_memory = "200MB" }
env = { MODE = "prod", API_TOKEN = "s3cret" }
watch = true

[[apps]]
name = "worker"
script = "worker.py"
depends_on = ["web"]
autorestart = "on-failure"
limits = { nofile = 4096 }

[[apps]]
name = "migrate"
cmd = ["python3", "manage.py", "migrate"]
autorestart = "never"
"""


@pytest.fixture
def project(workdir: Path) -> Path:
    (workdir / "corral.toml").write_text(FILE)
    (workdir / "worker.py").write_text("import time\ntime.sleep(3600)\n")
    return workdir


def export(corral: Corral, kind: str, project: Path, *extra: str) -> tuple[Path, list[str]]:
    out = project / f"out-{kind}"
    done = corral.run("export", kind, "corral.toml", "-o", str(out), *extra, cwd=str(project))
    return out, done.stderr.splitlines()


def test_kubernetes_manifests_pass_the_schemas_and_map_probes_and_resources(corral: Corral, project: Path) -> None:
    import kubernetes_validate

    out, unmapped = export(corral, "kubernetes", project, "--image", "shop:1.2")
    docs = list(yaml.safe_load_all((out / "kubernetes.yaml").read_text()))
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert kinds == {("Deployment", "web"), ("Service", "web"), ("Deployment", "worker"), ("Job", "migrate")}
    web = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "web")
    assert web["spec"]["replicas"] == 2
    pod = web["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 13
    container = pod["containers"][0]
    assert container["image"] == "shop:1.2"
    assert container["args"] == ["--only", "web", "--instances", "1"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/", "port": 8000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8000}
    assert container["livenessProbe"]["failureThreshold"] == 4
    assert container["livenessProbe"]["initialDelaySeconds"] == 20
    assert container["resources"] == {"requests": {"cpu": "800m", "memory": str(200 * 2**20)},
                                      "limits": {"memory": str(300 * 2**20)}}
    assert unmapped == [
        'corral: export kubernetes: app "web": watch: not mapped to kubernetes',
        'corral: export kubernetes: app "worker": autorestart = "on-failure": a Deployment restarts its pods always',
        'corral: export kubernetes: app "worker": depends_on web: Kubernetes starts pods in any order '
        '(the readiness probes gate traffic)',
    ]


def test_the_validator_catches_a_broken_manifest() -> None:
    """The check above can fail: a Deployment without its selector is refused."""
    import kubernetes_validate

    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
              "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "i"}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def _compose_schema() -> object:
    from jsonschema import Draft7Validator

    schema = json.loads((ROOT / "tests" / "fixtures" / "compose" / "compose-spec.json").read_text())
    return Draft7Validator(schema)


def test_compose_passes_the_compose_spec_schema_with_the_health_probe_as_healthcheck(corral: Corral,
                                                                                      project: Path) -> None:
    out, unmapped = export(corral, "compose", project)
    doc = yaml.safe_load((out / "compose.yaml").read_text())
    errors = [e.message for e in _compose_schema().iter_errors(doc)]  # type: ignore[attr-defined]
    assert errors == []
    web, worker = doc["services"]["web"], doc["services"]["worker"]
    assert web["build"] == "." and web["command"] == ["--only", "web"] and web["ports"] == ["8000:8000"]
    assert web["healthcheck"]["test"][:2] == ["CMD", "python3"]
    assert "http://127.0.0.1:8000/healthz" in web["healthcheck"]["test"][-1]
    assert web["healthcheck"]["retries"] == 4 and web["healthcheck"]["start_period"] == "20s"
    assert worker["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert doc["services"]["migrate"]["restart"] == "no"
    assert unmapped == []
    bad = {"services": {"web": {"image": "x", "healthcheck": {"retry": 3}}}}  # a misspelt key is refused
    assert list(_compose_schema().iter_errors(bad))  # type: ignore[attr-defined]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (Debian: systemd)")
def test_systemd_units_pass_systemd_analyze_verify(corral: Corral, project: Path) -> None:
    out, unmapped = export(corral, "systemd", project)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["corral-migrate.target", "corral-migrate@.service", "corral-web.target", "corral-web@.service",
                     "corral-worker.target", "corral-worker@.service"]
    assert verify(out, *names) == ""
    web = (out / "corral-web@.service").read_text()
    for line in ("TimeoutStopSec=8000ms", "MemoryMax=314572800", 'Environment="MODE=prod"', "LimitCORE=0",
                 'Environment="CORRAL_INSTANCE=%i"', "ExecStart=python3 -m uvicorn asgi_app:app --fd 3"):
        assert line in web.splitlines()
    assert "s3cret" not in web  # a secret is never written
    worker = (out / "corral-worker@.service").read_text().splitlines()
    assert "Requires=corral-web.target" in worker and "LimitNOFILE=4096" in worker
    assert "Restart=on-failure" in worker
    assert 'corral: export systemd: app "web": env API_TOKEN: a secret, not written (keep it in an env_file or a ' \
           'secret store)' in unmapped
    assert 'corral: export systemd: app "web": watch: not mapped to systemd' in unmapped


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (Debian: systemd)")
def test_export_systemd_without_a_file_is_the_unit_of_corral_itself(corral: Corral, project: Path) -> None:
    done = corral.run("export", "systemd", cwd=str(project))  # a corral.toml here changes nothing
    assert done.stdout == corral.run("startup", "--print").stdout
    (project / "corral.service").write_text(done.stdout)
    assert verify(project, "corral.service") == ""


def verify(folder: Path, *names: str) -> str:
    """What ``systemd-analyze verify`` says about the units (empty: nothing wrong)."""
    done = subprocess.run(["systemd-analyze", "verify", *names], cwd=folder, capture_output=True, text=True,
                          timeout=60)
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else f" (exit {done.returncode})")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (Debian: systemd)")
def test_verify_catches_a_broken_unit(workdir: Path) -> None:
    (workdir / "x.service").write_text("[Service]\nType=bogus\nExecStart=/bin/true\n")
    assert "Failed to parse service type" in verify(workdir, "x.service")


def syntax_check(folder: Path, playbook: str) -> subprocess.CompletedProcess[str]:
    program = Path(sys.executable).parent / "ansible-playbook"
    assert program.exists(), "ansible-playbook is not installed (ansible-core, in the test extra)"
    return subprocess.run([str(program), "--syntax-check", "-i", "inventory.ini", playbook], cwd=folder,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(folder),
                               "ANSIBLE_LOCAL_TEMP": str(folder / ".tmp"), "LANG": "C.UTF-8"})


def test_the_playbook_passes_ansible_syntax_check_and_rolls_host_by_host(corral: Corral, project: Path) -> None:
    out, unmapped = export(corral, "ansible", project, "--hosts", "web1.example.com,web2.example.com",
                           "--serial", "25%", "--max-fail-percentage", "10")
    done = syntax_check(out, "playbook.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    # the check can fail: a module misspelt is refused
    (out / "bad.yml").write_text((out / "playbook.yml").read_text().replace("ansible.builtin.pip:", "ansible.builtin.pipp:"))
    assert syntax_check(out, "bad.yml").returncode != 0
    (play,) = yaml.safe_load((out / "playbook.yml").read_text())
    assert play["serial"] == "25%" and play["max_fail_percentage"] == 10
    deploy = next(t for t in play["tasks"] if "deploy" in t.get("ansible.builtin.command", {}).get("cmd", ""))
    assert deploy["ansible.builtin.command"]["cmd"] == "/opt/corral/bin/corral deploy {{ corral_target }}"
    assert (out / "inventory.ini").read_text() == "[corral]\nweb1.example.com\nweb2.example.com\n"
    copy = next(t for t in play["tasks"] if "ansible.builtin.copy" in t)["ansible.builtin.copy"]
    assert copy["src"] == "../corral.toml"  # from the playbook's folder, where ansible looks
    assert unmapped == []


def test_docker_runs_corral_as_pid_1_as_a_user_with_the_health_probe(corral: Corral, project: Path) -> None:
    out, unmapped = export(corral, "docker", project)
    lines = (out / "Dockerfile").read_text().splitlines()
    assert 'ENTRYPOINT ["corral", "run", "/app/corral.toml"]' in lines
    assert "USER corral" in lines and "EXPOSE 8000" in lines
    health = next(line for line in lines if line.startswith("HEALTHCHECK"))
    assert "--retries=4" in health and "--start-period=20s" in health and "/healthz" in health
    assert unmapped == []
    out, _ = export(corral, "docker", project, "--env", "production")  # the container reads the file so too
    assert 'ENTRYPOINT ["corral", "run", "/app/corral.toml", "--env", "production"]' in \
        (out / "Dockerfile").read_text().splitlines()


def test_a_file_that_does_not_load_is_one_line(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text('[[apps]]\nname = "x"\ninstances = "many"\n')
    done = corral.run("export", "kubernetes", cwd=str(workdir), check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "instances" in done.stderr
    empty = workdir / "none"
    empty.mkdir()
    done = corral.run("export", "nginx", cwd=str(empty), check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("corral: export nginx: which ecosystem file?")
