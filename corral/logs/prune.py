"""The maintenance prune of rotated logs (``corral:prune``, ``corral:disk``): run as
``python -m corral.logs.prune`` by :mod:`corral.jobs.cleanup`, never in the daemon.

``CORRAL_MAINTENANCE`` (JSON) holds ``logs``: one ``{"path", "retain", "max_age"}`` per log file of
every app and job.  The rotated files of each (``rotation.rotated_files``) past ``retain`` or older
than ``max_age`` go (``rotation.to_prune``, the rule the writer applies when it rotates): a log that
has not rotated for a while, or whose app lowered its retention, is pruned all the same.  Files
are removed relative to their folder (``dir_fd``) and only when they are regular files: a symlink
named like a rotated log is never followed.  Prints one line per file and ``freed BYTES``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time

from corral.logs.rotation import rotated_files, to_prune


def prune(logs: list[dict[str, object]], now: float) -> int:
    freed = 0
    for entry in logs:
        path = entry.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            continue
        retain = entry.get("retain")
        max_age = entry.get("max_age")
        doomed = to_prune(rotated_files(path), now, retain if isinstance(retain, int) else None,
                          float(max_age) if isinstance(max_age, (int, float)) else None)
        if not doomed:
            continue
        try:
            fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            for f in doomed:
                name = os.path.basename(f.path)
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    os.unlink(name, dir_fd=fd)
                except OSError:
                    continue
                freed += st.st_blocks * 512
                print(f"removed {f.path}")
        finally:
            os.close(fd)
    return freed


def main() -> int:
    conf = json.loads(os.environ.get("CORRAL_MAINTENANCE") or "{}")
    print(f"freed {prune(conf.get('logs') or [], time.time())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
