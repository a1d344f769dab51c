"""The daemon's live objects: an app and its slots (one instance each, two during a rollout).

The decisions about them are pure (``lifecycle.instance`` for a slot, ``lifecycle.app`` for an
app); the supervisor carries them out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from corral.config.command import node_mode
from corral.config.policies import restart_policy
from corral.config.spec import AppSpec
from corral.lifecycle import app as am
from corral.lifecycle import instance as lc
from corral.logs.lines import LogLoss

if TYPE_CHECKING:
    from corral.daemon.timers import Handle
    from corral.logs.pipe import PipeReader
    from corral.process.nodeipc import Channel
    from corral.process.spawner import Child
    from corral.process.tracking import Tree

Status = lc.Status


class Slot:
    """One instance of an app: its lifecycle state and the live process behind it.

    During a rolling reload two slots share an index (the old one and its
    replacement); ``uid`` tells them apart.
    """

    _uids = 0

    def __init__(self, app: App, index: int) -> None:
        Slot._uids += 1
        self.uid = Slot._uids
        self.app = app
        self.index = index
        self.status_text: str | None = None
        self.probe: Any = None  # the readiness probe (health.probes.ReadinessProbe) while launching
        self.env: dict[str, str] = {}
        self.spawn_error: str | None = None
        self.state = lc.Instance()
        self.child: Child | None = None
        self.pgid: int | None = None
        self.tree: Tree | None = None  # the latest spawn's processes, wherever they go
        self.spawns = 0
        self.start_ticks: int | None = None
        self.started_wall: float | None = None
        self.timers: dict[str, Handle] = {}
        self.stderr: PipeReader | None = None
        self.last_exit: dict[str, Any] | None = None
        self.log_paths: tuple[str, str] | None = None  # the files its live process writes
        self.ipc: Channel | None = None  # Node's IPC channel of its live process (daemon.nodeapps)

    @property
    def status(self) -> Status:
        return self.state.status


class App:
    """One app: its spec, its slots, and the pure model's state (``lifecycle.app``)."""

    def __init__(self, name: str, app_id: int, spec: AppSpec, base_env: dict[str, str]) -> None:
        self.name = name
        self.id = app_id
        self.spec = spec
        self.base_env = base_env
        self.policy = restart_policy(spec)
        self.node_cluster, self.node_ipc = node_mode(spec)
        self.state = am.AppState(instances=spec.instances)
        self.slots: list[Slot] = []
        self.log_loss = LogLoss(name)  # lines its log files did not get (the supervisor sets where it reports)
        #: Node cluster mode: the addresses its instances listened on, and which slots did
        self.inferred: dict[str, list[int]] = {}

    @property
    def namespace(self) -> str:
        return self.spec.namespace

    @property
    def desired(self) -> str:
        return self.state.desired.value

    @property
    def deleting(self) -> bool:
        return self.state.deleting

    def set_spec(self, spec: AppSpec) -> None:
        self.spec = spec
        self.policy = restart_policy(spec)
        self.node_cluster, self.node_ipc = node_mode(spec)
        self.state = replace(self.state, instances=spec.instances)

    def stored_spec(self) -> dict[str, Any]:
        stored = {**self.spec.to_dict(), "base_env": self.base_env}
        if self.inferred:
            stored["listen_inferred"] = self.inferred
        return stored

    def slot_infos(self) -> list[am.SlotInfo]:
        return [am.SlotInfo(s.uid, s.index, s.status) for s in self.slots]
