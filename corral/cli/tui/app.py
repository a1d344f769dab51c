"""``corral monit``: the textual app.  It draws what ``cli.tui.model`` computes from what
``cli.tui.feed`` reads; every daemon call runs in a thread, so the screen never waits.

What happens when: the subscription's events mark the table stale (one ``ls`` at most every
:data:`REFRESH` seconds); the metrics history comes once per sampling interval; the selected
app's log files are read for new lines every :data:`TICK` seconds.  Nothing else runs while
nothing happens.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, RichLog, Static

from corral.cli.render import clean
from corral.cli.tui import feed, model
from corral.control.protocol import RemoteError
from corral.exceptions import OperationFailed

TICK = 0.25  # seconds between looks at the inbox and the selected app's log files
REFRESH = 0.5  # at most one ``ls`` per this many seconds, however many events come
SELECT_DELAY = 0.15
SEARCH_DELAY = 0.2  # the search applies this long after the last key typed  # the cursor rests this long on a row before its logs and timeline load
STATUS_COLOURS = {"online": "green", "launching": "cyan", "stopping": "yellow", "waiting_restart": "yellow",
                  "stopped": "bright_black", "errored": "red", "skipped": "red"}
ERRORS = (OperationFailed, RemoteError, OSError)


class ConfirmScreen(ModalScreen[bool]):
    """The question before an action; ``y`` answers yes, any other key no."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Static { width: auto; max-width: 90%; padding: 1 2; border: thick $warning; background: $panel; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(Text(self.question), id="question")

    def on_key(self, event: Any) -> None:
        event.stop()
        event.prevent_default()
        self.dismiss(event.key in model.Confirm.YES)


class Monit(App[None]):
    TITLE = "corral monit"
    CSS = """
    #summary { height: 1; padding: 0 1; background: $boost; }
    #table { height: auto; max-height: 50%; min-height: 4; }
    #bottom { height: 1fr; }
    #logpane { width: 2fr; }
    #timepane { width: 1fr; }
    .title { height: 1; padding: 0 1; background: $primary-background; }
    #status { height: 1; padding: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("slash", "search", "search logs"),
        Binding("escape", "clear_search", "clear search", show=False),
        *(Binding(key, f"act('{key}')", label) for key, (_, label) in model.KEYS.items()),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ls_rows: list[dict[str, Any]] = []
        self.report: dict[str, Any] | None = None
        self.shown: list[model.Row] = []
        self.selected: str | None = None
        self.logs: feed.Logs | None = None
        self.timeline: list[dict[str, Any]] = []
        self.timeline_live: list[dict[str, Any]] | None = None  # events seen while the history loads
        self.pattern: re.Pattern[str] | None = None
        self.inbox = model.Inbox()
        self.lock = threading.Lock()
        self.refreshing = self.stale = False
        self.last_refresh = 0.0
        self.metrics_due = 0.0
        self.interval = 10.0
        self.select_timer: Timer | None = None
        self.search_timer: Timer | None = None
        self.stream: feed.Stream | None = None
        self.texts: dict[str, str] = {}  # what each one-line widget shows now

    def compose(self) -> ComposeResult:
        yield Static("connecting to the daemon...", id="summary")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="bottom"):
            with Vertical(id="logpane"):
                yield Static("logs", id="logtitle", classes="title")
                yield RichLog(id="logs", max_lines=model.LOG_LINES, wrap=False, markup=False, highlight=False)
                yield Input(placeholder="/ searches the logs (a regular expression); Enter keeps it, Escape clears",
                            id="search", compact=True)
            with Vertical(id="timepane"):
                yield Static("timeline", id="timetitle", classes="title")
                yield RichLog(id="timeline", max_lines=model.TIMELINE, wrap=True, min_width=20, markup=False,
                              highlight=False)
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#table", DataTable)
        for name in model.COLUMNS:
            table.add_column(name, key=name)
        self.stream = feed.Stream(self._from_stream, lambda why: self.call_from_thread(self._lost, why))
        self.stream.start()
        self._background(lambda: feed.call("ls"), self._got_ls)
        self._fetch_metrics()
        self.set_interval(TICK, self._tick)

    def on_unmount(self) -> None:
        if self.stream is not None:
            self.stream.close()
        if self.logs is not None:
            self.logs.close()

    # -- the daemon, in threads --------------------------------------------------------------
    def _background(self, work: Callable[[], Any], done: Callable[[Any], None],
                    failed: Callable[[str], None] | None = None) -> None:
        def run() -> None:
            try:
                result = work()
            except ERRORS as exc:
                self.call_from_thread(failed or self.say, getattr(exc, "message", None) or str(exc))
                return
            self.call_from_thread(done, result)

        self.run_worker(run, thread=True, exit_on_error=False)

    def _from_stream(self, message: dict[str, Any]) -> None:  # the stream's thread
        with self.lock:
            self.inbox.take(message)

    def _lost(self, why: str) -> None:
        self.say(f"no more events from the daemon: {why}")

    def say(self, text: str) -> None:
        self._put("#status", text)

    # -- the clock ---------------------------------------------------------------------------
    def _tick(self) -> None:
        with self.lock:
            inbox, self.inbox = self.inbox, model.Inbox()
        now = time.monotonic()
        if inbox.dropped:
            self.say(f"{inbox.dropped} event(s) lost so far: the screen was too slow")
        live = [ev for ev in inbox.events if model.keep_on_timeline(ev, self.selected)]
        if self.timeline_live is not None:  # the history is on its way: these go after it
            self.timeline_live += live
        elif live:
            self._add_timeline(live)
        self.stale = self.stale or inbox.stale
        if self.stale and not self.refreshing and now - self.last_refresh >= REFRESH:
            self._refresh_ls()
        if now >= self.metrics_due:
            self._fetch_metrics()
        if self.logs is not None:
            self._show_lines(self.logs.poll())

    def _refresh_ls(self) -> None:
        self.stale, self.refreshing, self.last_refresh = False, True, time.monotonic()

        def failed(why: str) -> None:
            self.refreshing = False
            self.say(why)

        self._background(lambda: feed.call("ls"), self._got_ls, failed)

    def _fetch_metrics(self) -> None:
        self.metrics_due = time.monotonic() + self.interval

        def got(report: dict[str, Any]) -> None:
            self.report = report
            self.interval = max(1.0, float(report.get("interval") or 10.0))
            self._draw()

        self._background(lambda: feed.call("metrics", {"since": model.HISTORY}), got, lambda why: None)

    def _got_ls(self, rows: list[dict[str, Any]]) -> None:
        self.refreshing = False
        self.ls_rows = rows
        self._draw()

    # -- drawing -----------------------------------------------------------------------------------
    def _draw(self) -> None:
        self._put("#summary", model.summary(self.ls_rows, self.report))
        table = self.query_one("#table", DataTable)
        new = model.rows(self.ls_rows, self.report, time.time())
        if [r.key for r in new] == [r.key for r in self.shown]:
            for old, row in zip(self.shown, new):
                for column, before, after in zip(model.COLUMNS, old.cells, row.cells):
                    if before != after:
                        table.update_cell(row.key, column, self._cell(column, after))
        else:
            current = self.shown[table.cursor_row].key if self.shown and table.cursor_row < len(self.shown) else None
            table.clear()
            for row in new:
                table.add_row(*(self._cell(c, v) for c, v in zip(model.COLUMNS, row.cells)), key=row.key)
            keys = [r.key for r in new]
            if current in keys:
                table.move_cursor(row=keys.index(current))
        self.shown = new
        if new and self.selected not in {r.app for r in new}:  # the first look, or the app was deleted
            self._select(new[min(max(0, table.cursor_row), len(new) - 1)].app)
        if not new:
            self._put("#logtitle", "no apps yet: `corral start app.py` adds one")

    def _put(self, selector: str, text: str) -> None:
        """A one-line widget's text, redrawn only when it changed."""
        if self.texts.get(selector) != text:
            self.texts[selector] = text
            self.query_one(selector, Static).update(Text(text))

    @staticmethod
    def _cell(column: str, value: str) -> Text:
        if column == "status":
            return Text(value, style=STATUS_COLOURS.get(value, ""))
        if column.endswith("history"):
            return Text(value, style="cyan" if column.startswith("cpu") else "magenta")
        return Text(value)

    # -- the selected app: logs and timeline ---------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        app = next((r.app for r in self.shown if r.key == key), None)
        if app is None or app == self.selected:
            return
        if self.select_timer is not None:
            self.select_timer.stop()
        self.select_timer = self.set_timer(SELECT_DELAY, lambda: self._select(app))

    def _select(self, app: str) -> None:
        if app == self.selected:
            return
        self.selected = app
        if self.logs is not None:
            self.logs.close()
            self.logs = None
        self.query_one("#logs", RichLog).clear()
        self.query_one("#timeline", RichLog).clear()
        self.timeline, self.timeline_live = [], []
        self._titles()
        logs = feed.Logs(app)

        def opened(lines: list[str]) -> None:
            if self.selected != app:
                logs.close()
                return
            self.logs = logs
            self._show_lines(lines)

        self._background(lambda: logs.open(), opened)
        def history(events: list[dict[str, Any]]) -> None:
            if self.selected == app:
                live, self.timeline_live = self.timeline_live or [], None
                self._add_timeline(model.merge_timeline(events, live))

        self._background(lambda: feed.call("events", {"target": app, "limit": model.TIMELINE}), history)

    def _titles(self) -> None:
        name = clean(self.selected or "")
        search = f"  search: {clean(self.query_one('#search', Input).value)}" if self.pattern else "  (/ to search)"
        self._put("#logtitle", f"logs of {name}{search}")
        why = model.restart_reason(self.timeline)
        self._put("#timetitle", f"timeline of {name}" + (f"  last: {why}" if why else ""))

    def _show_lines(self, lines: list[str]) -> None:
        shown = model.found(lines, self.pattern)
        if shown:  # one write: the pane lays them out once
            self.query_one("#logs", RichLog).write(Text("\n".join(shown[-model.REFILL:])))

    def _add_timeline(self, events: list[dict[str, Any]]) -> None:
        kept = [ev for ev in events if ev.get("kind") not in model.NOISE]
        self.timeline = (self.timeline + kept)[-model.TIMELINE:]
        pane = self.query_one("#timeline", RichLog)
        for ev in kept:
            pane.write(Text(model.timeline_line(ev)))
        self._titles()

    # -- search ----------------------------------------------------------------------------------------
    def action_search(self) -> None:
        # at once, not later: the keys typed right after the slash belong to the search
        self.screen.set_focus(self.query_one("#search", Input))

    def on_input_changed(self, event: Input.Changed) -> None:
        """The search is applied once typing pauses (each key would redraw the pane)."""
        if self.search_timer is not None:
            self.search_timer.stop()
        self.search_timer = self.set_timer(SEARCH_DELAY, lambda: self._search(event.value))

    def _search(self, text: str) -> None:
        self.pattern = model.matcher(text)
        log = self.query_one("#logs", RichLog)
        log.clear()
        if self.logs is not None:
            self._show_lines(self.logs.lines)
        self._titles()

    def on_key(self, event: Any) -> None:
        """Keys typed right after the slash, in the same burst, were routed before the search box
        had the focus: they come here instead of to it."""
        box = self.query_one("#search", Input)
        if self.focused is box and event.is_printable and event.character:
            box.insert_text_at_cursor(event.character)
            event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#table", DataTable).focus()

    def action_clear_search(self) -> None:
        box = self.query_one("#search", Input)
        box.value = ""
        self.query_one("#table", DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Typing a search is not pressing keys: only Escape (and Enter) leave the search box.
        While a question is open, its answer is the only key (``q`` too is a no)."""
        if isinstance(self.screen, ConfirmScreen):
            return False
        if self.focused is not None and self.focused.id == "search":
            return action == "clear_search"
        return True

    # -- actions ------------------------------------------------------------------------------------
    def action_act(self, key: str) -> None:
        action = model.action_for(key, self.selected, model.instances_of(self.ls_rows, self.selected))
        if action is None:
            if key == "minus" and self.selected is not None:
                self.say("one instance left: stop the app instead (s)")
            return
        confirm = model.Confirm()
        question = confirm.ask(action)

        def answered(yes: bool | None) -> None:
            chosen = confirm.answer("y" if yes else "n")
            if chosen is None:
                self.say(f"{action.name}: cancelled")
                return
            self.say(f"{action.name} {clean(str(action.args['target']))}...")
            self._background(lambda: feed.call(chosen.op, chosen.args),
                             lambda result: self.say(f"{action.name} {clean(str(action.args['target']))}: done"))

        self.push_screen(ConfirmScreen(question), answered)
