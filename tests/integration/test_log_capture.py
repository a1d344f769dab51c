"""Nothing an app writes is lost: floods, partial lines, huge lines, merged instances.

Every line in a log file starts with a timestamp (``2026-11-22T05:40:00.123+00:00 ``); the
helpers strip it.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Corral, app
from tests.logfiles import all_text, log_path, unstamped


def test_a_flood_arrives_complete_and_in_order(corral: Corral, workdir: Path) -> None:
    count = 300_000
    (workdir / "corral.toml").write_text(
        f'[[apps]]\nname = "flood"\nscript = "{app("flood.py")}"\nargs = ["{count}"]\nautorestart = false\n')
    corral.run("start", str(workdir / "corral.toml"))
    corral.wait_status("flood", "stopped", timeout=60)
    lines = unstamped(all_text(log_path(corral.home, "flood")))  # 37 MB: rotated files too
    assert [int(l.split()[1]) for l in lines] == list(range(count))
    assert all(l.endswith("x" * 80) for l in lines)


def test_a_partial_last_line_is_flushed_at_exit_and_huge_lines_are_split(corral: Corral, workdir: Path) -> None:
    script = workdir / "odd.py"
    script.write_text(
        "import sys\n"
        "sys.stdout.write('A' * 200000 + '\\n')\n"
        "sys.stdout.write('tail without newline')\n"
        "sys.stdout.flush()\n"
        "sys.stderr.buffer.write(b'bad utf8 \\xff\\xfe end\\n')\n"
    )
    (workdir / "corral.toml").write_text(f'[[apps]]\nname = "odd"\nscript = "{script}"\nautorestart = false\n')
    corral.run("start", str(workdir / "corral.toml"))
    corral.wait_status("odd", "stopped")
    text = corral.log("odd")
    assert text.endswith("\n")  # every line ends with a newline
    out = unstamped(text)
    assert "".join(out[:-1]) == "A" * 200000 and max(len(l) for l in out) == 64 * 1024
    assert out[-1] == "tail without newline"
    err = Path(corral.home, "logs", "odd-error.log").read_bytes().decode("utf-8")  # valid UTF-8 now
    assert unstamped(err) == ["bad utf8 \ufffd\ufffd end"]


def test_merged_instances_never_mix_within_a_line(corral: Corral, workdir: Path) -> None:
    count = 50_000
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "m"
script = "{app('flood.py')}"
args = ["{count}"]
instances = 2
merge_logs = true
autorestart = false
""")
    corral.run("start", str(workdir / "corral.toml"))
    corral.wait_status("m", "stopped", instance=0, timeout=60)
    corral.wait_status("m", "stopped", instance=1, timeout=60)
    lines = unstamped(all_text(log_path(corral.home, "m")))
    assert len(lines) == 2 * count
    pad = "x" * 80
    assert all(l.startswith("line ") and l.endswith(pad) and len(l.split()) == 3 for l in lines)
