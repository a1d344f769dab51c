"""The pure parts of `corral monit` (corral.cli.tui.model), without textual or a daemon."""

from __future__ import annotations

import subprocess
import sys

from corral.cli.tui import model


def test_sparkline_scales_from_zero_and_keeps_the_newest_on_the_right() -> None:
    assert model.sparkline([0, 50, 100], width=3) == "▁▅█"
    assert model.sparkline([10, 10], width=2, floor=0.0) == "██"  # 10 % flat: the top of 0..10
    assert model.sparkline([10, 10], width=2, floor=None) == "▁▁"  # memory: flat is the lowest bar
    assert model.sparkline([5.0], width=4) == "   █"  # padded on the left, the newest at the right
    assert model.sparkline([], width=3) == "   "
    assert model.sparkline([0.0, 0.0], width=2) == "▁▁"


def test_a_long_history_is_averaged_into_the_width_the_newest_group_whole() -> None:
    assert model.fit([1, 2, 3, 4, 5, 6], 3) == [1.5, 3.5, 5.5]
    assert model.fit([1, 2, 3, 4, 5], 2) == [1.5, 4.0]  # groups of 3, the oldest one partial
    assert model.fit([1, 2], 5) == [1, 2] and model.fit([1, 2], 0) == []
    assert len(model.sparkline([float(i) for i in range(60)], width=20)) == 20


def test_cpu_and_memory_lines_keep_jitter_small() -> None:
    assert model.cpu_line([0.1, 0.3, 0.2], width=3) == "▁▁▁"  # under 10 %: the bottom
    assert model.cpu_line([0.0, 50.0, 100.0], width=3) == "▁▅█"
    assert model.memory_line([100.0, 101.0, 100.5], width=3) == "▁▁▁"  # 1 % of jitter
    assert model.memory_line([100.0, 150.0, 200.0], width=3) == "▁▅█"  # doubled: a climb
    assert model.memory_line([], width=2) == "  "


def ls_row(name: str, instance: int = 0, **more: object) -> dict[str, object]:
    row: dict[str, object] = {"name": name, "id": 3, "instance": instance, "pid": 4242, "status": "online",
                              "restarts": 2, "started_at": 1000.0, "cpu_percent": 12.345, "memory_bytes": 10 * 2**20}
    row.update(more)
    return row


def test_rows_carry_status_figures_sparklines_and_restarts() -> None:
    report = {"history": {"instances": {"api:0": [[1, 0.0, 100.0], [2, 50.0, 200.0], [3, 100.0, 300.0]]}}}
    [row] = model.rows([ls_row("api")], report, now=1090.0, width=3)
    assert row.key == "api:0" and row.app == "api" and row.status == "online"
    assert dict(zip(model.COLUMNS, row.cells)) == {
        "app": "api", "id": "3", "inst": "0", "status": "online", "pid": "4242", "cpu": "12.3%",
        "cpu history": "▁▅█", "memory": "10.0 MB", "memory history": "▁▅█", "restarts": "2", "uptime": "1m"}


def test_cpu_and_memory_come_from_the_latest_sample_of_the_same_pid() -> None:
    fresh = {"instances": [{"app": "api", "instance": 0, "pid": 4242, "cpu": 55.0, "rss": 20 * 2**20}]}
    cells = dict(zip(model.COLUMNS, model.rows([ls_row("api")], fresh, now=1090.0)[0].cells))
    assert (cells["cpu"], cells["memory"]) == ("55.0%", "20.0 MB")
    fresh["instances"][0]["pid"] = 1  # a sample of the instance's previous process: ls is newer
    cells = dict(zip(model.COLUMNS, model.rows([ls_row("api")], fresh, now=1090.0)[0].cells))
    assert (cells["cpu"], cells["memory"]) == ("12.3%", "10.0 MB")


def test_a_stopped_instance_has_no_pid_nor_uptime_and_a_hostile_name_is_escaped() -> None:
    [row] = model.rows([ls_row("evil\x1b]52;c;x\x07", pid=None, status="stopped")], None, now=5000.0)
    cells = dict(zip(model.COLUMNS, row.cells))
    assert cells["pid"] == "-" and cells["uptime"] == "-" and cells["cpu history"].strip() == ""
    assert "\x1b" not in cells["app"] and "\\x1b" in cells["app"]


def test_summary_counts_apps_instances_online_and_shows_the_host() -> None:
    rows = [ls_row("a"), ls_row("a", 1, status="errored"), ls_row("b")]
    assert model.summary(rows, None) == "2 app(s), 3 instance(s), 2 online"
    host = {"host": {"cpu": 12.4, "memory_available": 80.2, "load": [0.5, 0.4, 0.3]}}
    assert model.summary(rows, host).endswith("host cpu 12%, memory available 80%, load 0.50")


def test_each_action_key_names_its_operation_and_its_question() -> None:
    restart = model.action_for("r", "api", 2)
    assert restart is not None and (restart.op, restart.args) == ("restart", {"target": "api"})
    assert restart.question == "restart api?"
    reload = model.action_for("R", "api", 2)
    assert reload is not None and (reload.op, reload.args) == ("reload", {"target": "api", "parallel": 1})
    stop = model.action_for("s", "api", 2)
    assert stop is not None and stop.op == "stop"
    up = model.action_for("plus", "api", 2)
    assert up is not None and (up.op, up.args) == ("scale", {"target": "api", "count": "+1"})
    assert up.question == "scale api from 2 to 3 instance(s)?"
    down = model.action_for("minus", "api", 2)
    assert down is not None and down.args["count"] == "-1"


def test_no_action_without_an_app_for_an_unknown_key_or_below_one_instance() -> None:
    assert model.action_for("r", None, 0) is None
    assert model.action_for("x", "api", 1) is None
    assert model.action_for("minus", "api", 1) is None


def test_confirmation_acts_only_on_yes_and_closes_either_way() -> None:
    confirm = model.Confirm()
    action = model.action_for("r", "api", 1)
    assert action is not None
    assert confirm.ask(action).startswith("restart api?")
    assert confirm.answer("n") is None and confirm.pending is None
    assert confirm.answer("y") is None  # nothing asked any more: a stray y does nothing
    confirm.ask(action)
    assert confirm.answer("escape") is None
    confirm.ask(action)
    assert confirm.answer("y") is action and confirm.pending is None


def test_the_timeline_leaves_out_noise_and_other_apps() -> None:
    assert model.keep_on_timeline({"app": "api", "kind": "crash"}, "api")
    assert not model.keep_on_timeline({"app": "api", "kind": "state"}, "api")
    assert not model.keep_on_timeline({"app": "web", "kind": "crash"}, "api")
    assert not model.keep_on_timeline({"app": "api", "kind": "crash"}, None)


def test_live_events_seen_while_the_history_loads_follow_it_once() -> None:
    spawn = {"ts": 1.5, "app": "api", "instance": 0, "kind": "spawn", "message": "pid 7"}
    ready = {"ts": 2.5, "app": "api", "instance": 0, "kind": "ready", "message": "up"}
    history = [{"ts": 1.0, "app": "api", "instance": 0, "kind": "start", "message": "started"}, spawn]
    assert model.merge_timeline(history, [dict(spawn), ready]) == history + [ready]
    assert model.merge_timeline([], [ready]) == [ready]


def test_why_did_it_restart_is_the_crash_before_its_exit() -> None:
    crash = {"ts": 0, "app": "api", "instance": 0, "kind": "crash", "message": "ValueError: bad (code_bug)",
             "data": {"frames": ['File "app.py", line 3, in main']}}
    events = [{"ts": 0, "app": "api", "instance": 0, "kind": "spawn", "message": "pid 1"}, crash,
              {"ts": 0, "app": "api", "instance": 0, "kind": "exit", "message": "exit code 1"},
              {"ts": 0, "app": "api", "instance": 0, "kind": "alert", "message": "warning: ..."}]
    why = model.restart_reason(events)
    assert why is not None and "crash" in why and "ValueError: bad" in why and 'line 3, in main' in why
    assert model.restart_reason(events[:1]) is None
    memory = {"ts": 0, "app": "api", "instance": 1, "kind": "memory_restart", "message": "rss over 1 GiB"}
    assert "memory_restart" in (model.restart_reason(events + [memory]) or "")


def test_the_inbox_marks_the_table_stale_and_keeps_events_and_losses() -> None:
    inbox = model.Inbox()
    assert not inbox.stale
    inbox.take({"event": {"app": "a", "kind": "spawn"}})
    inbox.take({"dropped": 7})
    assert inbox.stale and inbox.dropped == 7 and inbox.events == [{"app": "a", "kind": "spawn"}]
    for n in range(model.TIMELINE + 5):
        inbox.take({"event": {"n": n}})
    assert len(inbox.events) == model.TIMELINE and inbox.events[-1] == {"n": model.TIMELINE + 4}


def test_search_is_a_regex_or_the_text_itself_with_smartcase() -> None:
    lines = ["api out | GET /health 200", "api err | Traceback (most recent call last):", "api out | get /x"]
    assert model.found(lines, model.matcher("get")) == [lines[0], lines[2]]
    assert model.found(lines, model.matcher("GET")) == [lines[0]]
    assert model.found(lines, model.matcher("(most")) == [lines[1]]  # not a regex: the text itself
    assert model.found(lines, model.matcher("20[0-9]")) == [lines[0]]
    assert model.matcher("") is None and model.found(lines, None) == lines


def test_a_log_line_is_escaped_for_the_terminal() -> None:
    assert model.log_line("api out", "a\x1b[2Jb") == "api out | a\\x1b[2Jb"


def test_the_model_and_the_cli_verbs_do_not_import_textual() -> None:
    code = ("import sys; import corral.cli.tui.model, corral.cli.tui.feed, corral.cli.tui, corral.cli.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
