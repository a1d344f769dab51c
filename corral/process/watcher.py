"""The watch helper: a process of its own that reads file changes and tells the daemon which apps they concern.

The daemon starts it (``python -m corral.process.watcher``) only while some app has ``watch``, so
``watchfiles`` (a Rust notify binding) and its threads never load into the daemon.  The protocol
is JSON lines:

* on stdin, the whole watch set each time it changes:
  ``{"apps": {"api": {"paths": [...], "cwd": "/srv/api", "ignore": [...] | null, "skip": [...]}}}``
  (``paths`` absolute; ``ignore`` the app's ``ignore_watch``, null for PM2's default; ``skip`` the
  app's own log files);
* on stdout, one line per app per batch of changes (``watchfiles`` groups a burst: an editor's
  save or a ``git checkout`` is one batch): ``{"app": "api", "paths": ["src/a.js"], "count": 1}``,
  ``{"app": "api", "watching": [...]}`` once the watches of a new set are in place, or
  ``{"app": "api", "error": "..."}`` for a path that cannot be watched.

End of stdin (the daemon is gone) ends the helper at once.  The rules of what a change concerns
are pure (:func:`concerns`), tested without the library.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
import threading
from typing import Any

#: PM2's default when an app gives no ``ignore_watch``: dot files and folders, and node_modules.
PM2_DEFAULT = re.compile(r"(^|/)\.|(^|/)node_modules(/|$)")
#: Never a reason to restart, whatever ``ignore_watch`` says: Python's bytecode cache, written
#: when the restarted app imports its modules.
ALWAYS = re.compile(r"(^|/)__pycache__(/|$)|\.py[co]$")
SHOWN = 5  # changed paths named per line
IDLE_MS = 1000  # with no change, the watch wakes this often (the first wake-up says it is in place)


def _glob(rel: str, pattern: str) -> bool:
    """``pattern`` as a glob: the whole path, a folder it is in, or (without "/") one name."""
    parts = rel.split("/")
    if any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern.rstrip("/")) for i in range(1, len(parts) + 1)):
        return True
    return "/" not in pattern and any(fnmatch.fnmatchcase(part, pattern) for part in parts)


def _regex(text: str, pattern: str) -> bool:
    r"""``pattern`` as a regular expression, when it has what only those have (``\.git``,
    ``\.test\.js$``); ``node_modules``, ``client/img`` or ``*.log`` are paths and globs."""
    if not any(c in pattern for c in "\\^$()|+{"):
        return False
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def ignored(path: str, cwd: str, patterns: list[str] | None) -> bool:
    """Whether a change of ``path`` (absolute) is ignored by ``patterns`` (PM2's ``ignore_watch``:
    paths or globs relative to ``cwd``, or regular expressions; None: PM2's default)."""
    rel = os.path.relpath(path, cwd) if path.startswith(cwd.rstrip("/") + "/") else path
    if ALWAYS.search(rel):
        return True
    if patterns is None:
        return PM2_DEFAULT.search(rel) is not None
    for pattern in patterns:
        if pattern.startswith("/"):
            if path == pattern.rstrip("/") or path.startswith(pattern.rstrip("/") + "/") or _regex(path, pattern):
                return True
        elif _glob(rel, pattern) or _regex(rel, pattern):
            return True
    return False


def concerns(rules: dict[str, Any], path: str) -> bool:
    """Whether a change of ``path`` should restart the app these ``rules`` describe."""
    if path in rules.get("skip", ()):
        return False  # the app's own log files
    inside = any(path == root or path.startswith(root.rstrip("/") + "/") for root in rules["paths"])
    return inside and not ignored(path, rules["cwd"], rules.get("ignore"))


def report(apps: dict[str, dict[str, Any]], changed: list[str]) -> list[dict[str, Any]]:
    """The lines for one batch of changed paths: one per app concerned."""
    out = []
    for name, rules in apps.items():
        hits = sorted({p for p in changed if concerns(rules, p)})
        if hits:
            shown = [os.path.relpath(p, rules["cwd"]) if p.startswith(rules["cwd"]) else p for p in hits[:SHOWN]]
            out.append({"app": name, "paths": shown, "count": len(hits)})
    return out


class _Helper:
    def __init__(self) -> None:
        self.apps: dict[str, dict[str, Any]] = {}
        self.changed = threading.Event()  # a new watch set: the running watch ends, the next starts
        self.lock = threading.Lock()
        self.refused: set[tuple[str, str]] = set()

    def send(self, line: dict[str, Any]) -> None:
        with self.lock:
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    def read_stdin(self) -> None:
        for text in sys.stdin:
            try:
                apps = json.loads(text)["apps"]
            except (ValueError, KeyError, TypeError):
                continue
            self.apps = apps if isinstance(apps, dict) else {}
            self.changed.set()
        os._exit(0)  # the daemon closed the pipe (or died): nothing left to watch for

    def roots(self, apps: dict[str, dict[str, Any]]) -> list[str]:
        found = set()
        for name, rules in apps.items():
            for path in rules.get("paths", []):
                if os.path.exists(path):
                    found.add(path)
                elif (name, path) not in self.refused:
                    self.refused.add((name, path))
                    self.send({"app": name, "error": f"watch: {path} does not exist (not watched)"})
        return sorted(found)

    def run(self) -> None:
        import watchfiles

        threading.Thread(target=self.read_stdin, name="stdin", daemon=True).start()
        while True:
            self.changed.wait()
            self.changed.clear()
            apps = self.apps
            roots = self.roots(apps)
            if not roots:
                continue
            announced = False
            for batch in watchfiles.watch(*roots, watch_filter=None, stop_event=self.changed, step=50,
                                          debounce=1600, rust_timeout=IDLE_MS, yield_on_timeout=True,
                                          raise_interrupt=False, ignore_permission_denied=True):
                if not announced:  # the first yield: the watches are in place
                    announced = True
                    for name, rules in apps.items():
                        self.send({"app": name, "watching": [p for p in rules.get("paths", []) if p in roots]})
                for line in report(apps, [path for _, path in batch]):
                    self.send(line)


def main() -> int:
    try:
        _Helper().run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
