"""Who an app runs as: ``user`` and ``group`` resolved once per start (daemon running as root).

``user`` drops everything root has, the way ``login`` and ``su -`` do: the user's uid, its
primary group (``group`` replaces it), its supplementary groups as ``initgroups(3)`` computes them
(the groups of the group database that list the user, plus the primary group), and the
``HOME``, ``USER``, ``LOGNAME`` and ``SHELL`` of its password entry.  ``group`` alone changes
only the group (and clears root's supplementary groups).

A numeric ``user`` without a password entry (a container's arbitrary uid) needs ``group`` too;
it gets ``HOME=/`` and ``SHELL=/bin/sh``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from corral.exceptions import OperationFailed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.config.spec import AppSpec


class IdentityError(OperationFailed):
    """``user`` or ``group`` cannot be used; one line says why."""


@dataclass(frozen=True)
class Identity:
    uid: int | None  # None: the daemon's own (``group`` alone)
    gid: int
    groups: tuple[int, ...]  # supplementary groups
    name: str | None = None  # the password entry's, when there is one
    home: str = "/"
    shell: str = "/bin/sh"

    @property
    def owner(self) -> tuple[int, int]:
        """(uid, gid) for the files corral creates for this app (its log files)."""
        return (os.geteuid() if self.uid is None else self.uid), self.gid

    def popen_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {"group": self.gid, "extra_groups": list(self.groups)}
        if self.uid is not None:
            kwargs["user"] = self.uid
        return kwargs

    def env(self) -> dict[str, str]:
        """HOME, USER, LOGNAME and SHELL of the user (nothing for ``group`` alone)."""
        if self.uid is None:
            return {}
        name = self.name or str(self.uid)
        return {"HOME": self.home, "USER": name, "LOGNAME": name, "SHELL": self.shell}


def resolve(spec: AppSpec) -> Identity | None:
    """The identity an app runs as; None when it runs as the daemon's own user."""
    user, group = spec.user, spec.group
    if not user and not group:
        return None
    if os.geteuid() != 0:
        raise IdentityError("user/group need the daemon to run as root")
    gid = _gid(group) if group else None
    if not user:
        assert gid is not None
        return Identity(None, gid, ())
    import pwd

    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        if not user.isdigit():
            raise IdentityError(f"user {user!r}: no such user") from None
        if gid is None:
            raise IdentityError(f"user {user}: no password entry for this uid (set group too)") from None
        return Identity(int(user), gid, ())
    primary = pw.pw_gid if gid is None else gid
    try:
        groups = tuple(os.getgrouplist(pw.pw_name, primary))
    except OSError as exc:
        raise IdentityError(f"user {user!r}: cannot read its groups: {exc.strerror or exc}") from None
    return Identity(pw.pw_uid, primary, groups, pw.pw_name, pw.pw_dir or "/", pw.pw_shell or "/bin/sh")


def _gid(group: str) -> int:
    import grp

    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise IdentityError(f"group {group!r}: no such group") from None
