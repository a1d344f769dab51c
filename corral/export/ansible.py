"""An Ansible playbook (and its inventory) that rolls a deploy across hosts: ``serial`` batches,
``max_fail_percentage``; on each host it installs corral, copies the ecosystem file, makes corral
start at boot and runs ``corral deploy``, which switches releases health-gated and rolls back by
itself, exiting non-zero: that host fails, and too many failures stop the rollout."""

from __future__ import annotations

import os
from typing import Any

import yaml

from corral.config.spec import AppSpec
from corral.export import Export, Options

VENV = "/opt/corral"


def export(specs: list[AppSpec], options: Options) -> Export:
    out = Export()
    source = os.path.basename(options.source)
    serial: Any = int(options.serial) if options.serial.isdigit() else options.serial
    play: dict[str, Any] = {
        "name": "Deploy with corral, host by host",
        "hosts": "corral",
        "serial": serial,
        "max_fail_percentage": options.max_fail_percentage,
        "become": True,  # /opt/corral and the systemd unit are root's
        "vars": {"corral_package": "corral", "corral_dir": "/srv/corral", "corral_target": "all"},
        "tasks": [
            {"name": "Install corral in its own virtualenv",
             "ansible.builtin.pip": {"name": "{{ corral_package }}", "virtualenv": VENV,
                                     "virtualenv_command": "python3 -m venv"}},
            {"name": "Folder of the ecosystem file",
             "ansible.builtin.file": {"path": "{{ corral_dir }}", "state": "directory", "mode": "0755"}},
            {"name": f"Copy {source}",
             "ansible.builtin.copy": {"src": options.source_from_output, "dest": f"{{{{ corral_dir }}}}/{source}",
                                      "mode": "0644"}},
            {"name": "Start corral at boot (systemd unit, resurrects the saved apps)",
             "ansible.builtin.command": {"cmd": f"{VENV}/bin/corral startup systemd"},
             "changed_when": False},
            {"name": "Run the daemon under systemd from now on",
             "ansible.builtin.systemd_service": {"name": "corral-root.service", "state": "started"}},
            {"name": "Deploy (health-gated; corral rolls back by itself and fails this host)",
             "ansible.builtin.command": {"cmd": f"{VENV}/bin/corral deploy {{{{ corral_target }}}}",
                                         "chdir": "{{ corral_dir }}"},
             "register": "deploy", "changed_when": True},
            {"name": "Remember the apps for the next boot",
             "ansible.builtin.command": {"cmd": f"{VENV}/bin/corral save"}, "changed_when": False},
            {"name": "What corral said",
             "ansible.builtin.debug": {"var": "deploy.stdout_lines"}},
        ],
    }
    text = yaml.safe_dump([play], sort_keys=False, default_flow_style=False)
    out.files["playbook.yml"] = f"# Written by `corral export ansible`: ansible-playbook -i inventory.ini playbook.yml\n{text}"
    hosts = options.hosts or ("localhost ansible_connection=local",)
    out.files["inventory.ini"] = "[corral]\n" + "\n".join(hosts) + "\n"
    if not any(spec for spec in specs):
        out.cannot(None, "no app in the file")
    return out
