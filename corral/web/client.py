"""A small client for scripts: ``RemoteClient("https://host:9616", token).call("ls")``.

The same class the CLI's ``--remote`` mode uses (``corral.control.remote``)."""

from corral.control.remote import RemoteClient, RemoteSetupError, RemoteUnavailable, from_env

__all__ = ["RemoteClient", "RemoteSetupError", "RemoteUnavailable", "from_env"]
