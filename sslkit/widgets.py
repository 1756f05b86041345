"""A hyperparameter panel for notebooks: controls from a dataclass, a Train button, live progress.

Declare the knobs once, as a dataclass whose fields say their ranges with :func:`hparam`::

    @dataclass
    class ProbeHP:
        encoder: str = hparam("random init", options=("raw pixels", "random init", "supervised"))
        labels_per_class: int = hparam(10, low=1, high=100, log=True)
        temperature: float = hparam(0.05, low=0.01, high=1.0, log=True, include=(0.07,),
                                    label="kNN temperature τ", help="kNN vote temperature")
        steps: int = hparam(200, low=20, high=2000, log=True, unit="steps")

    def run(hp, report):                       # hp is a ProbeHP with the current values
        for step in range(1, hp.steps + 1):
            report(step=step, loss=..., accuracy=...)   # one point on the live curves
        report.phase("linear probe")          # optional: names what runs after the last step
        return {"accuracy": 0.91}              # a dict of metrics, a Figure, or (Figure, dict)

    Panel(ProbeHP, run, title="kNN probe")     # last expression of a cell: shows the panel

Controls: ``bool`` → checkbox, ``options=`` → dropdown, ``int``/``float`` → slider. A ``log=True``
range is a slider over a ladder of round values that holds the default, both ends and the
values in ``include=`` exactly (ints 1, 2, 3, 5, 10, 20, …; floats 1, 1.5, 2, 3, 5, 7 × 10ᵏ), so
the lecture's own settings can be reproduced. Labels are the field name in words (``label=``
overrides it, ``unit=`` is appended).

**One run at a time.** A click during a run, or one the browser sent during it that the kernel
only sees after it, is ignored (the status line says so); every control is disabled during a run
and enabled after it, also after an error. **Progress**: step ``k`` of ``n`` (``report.total`` or
the ``steps`` field), elapsed and estimated time left, also after the last step (evaluation) and
for handlers that never call ``report`` (both estimated from the previous run); updated at most
every ``progress_every`` s by ``report`` and every ``tick_every`` s by a clock thread.
**Comparison**: each run adds a row to a table (the settings that differ, the metrics, the time,
a thumbnail of a returned figure) and its curves stay on the plot in its own colour; *Clear runs*
empties both.

**Headless rule.** Showing a panel always trains once with the default values (``auto_run``,
or ``SSLKIT_AUTO_RUN=0`` to switch it off). A kernel cannot tell whether a browser is watching, so
the panel never guesses: under ``make run``/nbval/nbconvert the handler's code path is exercised
and the saved output keeps a static figure, status line and table next to the widget, with a line
saying that running the cells brings the controls (a frontend without widgets, an untrusted
notebook and the exported HTML show that); in JupyterLab the learner starts from a result, then
moves sliders and presses Train. A failure *with the defaults* is the author's bug and raises; a
failure after the learner moved a slider (``ValueError``, ``FloatingPointError`` such as a NaN
loss, or ``RuntimeError``) is shown in red in the status line and the previous plot stays.
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import html
import io
import math
import os
import sys
import threading
import time
import typing
from collections.abc import Callable, Sequence

import ipywidgets as W
from matplotlib.figure import Figure

from ._hparams import _KEY, HParam, _control, _exact, _fmt, _label, hparam

__all__ = ["hparam", "HParam", "Report", "Panel"]
_RED = "#c62828"
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")  # matplotlib's C0…C9: run k is drawn in C(k-1)
STATIC_HINT = ("This is a static copy of the default run. Run the cells of this notebook (trust "
               "it if Jupyter asks) to get the controls and the Train button.")


def _secs(s: float) -> str:
    return "<1 s" if s < 1 else f"{s:.0f} s" if s < 90 else f"{s // 60:.0f} min {s % 60:02.0f} s"


class Report:
    """The ``report`` callback a handler receives: ``report(step=..., loss=..., accuracy=...)``.

    Each call adds one point per metric (``step`` defaults to a running count); ``points`` maps
    a metric name to its ``[(step, value), …]``. Set ``report.total`` to the number of steps when
    the panel cannot read it from a ``steps`` field; ``report.phase("linear probe")`` names what
    runs after the training steps (the progress line shows it). ``report.progress(iterable)`` is a
    ``tqdm.auto`` bar (hidden when ``SSLKIT_PROGRESS=0``).
    """

    def __init__(self, on_point: Callable[[], None] = lambda: None):
        self.points: dict[str, list[tuple[float, float]]] = {}
        self._on_point, self._count = on_point, 0
        self.total: int | None = None
        self.step: float | None = None  # the last step reported, and when (perf_counter)
        self.first: tuple[float, float] | None = None
        self.last_time: float | None = None
        self.phase_name: str | None = None

    def __call__(self, step=None, **metrics) -> None:
        step = self._count if step is None else step
        self._count += 1
        for name, value in metrics.items():
            self.points.setdefault(name, []).append((step, float(value)))
        now = time.perf_counter()
        self.first = self.first or (step, now)
        self.step, self.last_time = step, now
        self._on_point()

    def phase(self, name: str) -> None:
        """Name the phase that runs now (``"linear probe"``): shown in the progress line."""
        self.phase_name = str(name)
        self._on_point()

    def progress(self, iterable=None, **kwargs):
        """``tqdm.auto.tqdm(iterable, **kwargs)``: a bar in the panel, text outside a notebook."""
        from tqdm.auto import tqdm

        kwargs.setdefault("disable", os.environ.get("SSLKIT_PROGRESS", "1") == "0")
        return tqdm(iterable, **kwargs)


def _in_ipython() -> bool:
    from IPython import get_ipython

    return get_ipython() is not None


def _kernel():
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None)


def _frontend_event() -> bool:
    """Whether the code runs because a message from the browser (a button click) arrived."""
    try:
        parent = _kernel().get_parent("shell") or {}
    except Exception:  # no kernel (tests, a script) or an ipykernel without get_parent
        return False
    return parent.get("header", {}).get("msg_type") == "comm_msg"


def _png(fig: Figure, dpi: int = 90) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _png_output(fig: Figure) -> dict:
    """A figure as one entry of an ``Output`` widget's ``outputs`` (a PNG, no pyplot needed)."""
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": _png(fig), "text/plain": "<Figure>"}}


class Panel:
    """Controls for the fields of ``hp_class``, a Train button, progress, a live plot, a table.

    ``run(hp, report)`` trains with ``hp`` (an instance of ``hp_class``), calls ``report(...)``
    to add points to the curves named in ``plots`` (one axes each, redrawn at most every
    ``redraw_every`` seconds and at the end, with the earlier runs' curves), and may return a dict
    of final metrics (shown in the status line and the table), a matplotlib ``Figure`` (shown
    instead of the curves) or both as ``(figure, metrics)``. Attributes: ``widgets`` (field name →
    control), ``button``, ``clear_button``, ``status``, ``progress`` and ``progress_bar``, ``log``
    (prints and progress bars), ``output`` (the figure), ``table`` (the runs), ``figure``,
    ``history`` (the last run's points), ``last_result``, ``results`` (one dict per run) and
    ``runs``.
    """

    redraw_every = 0.3         # seconds between live redraws of the curves
    progress_every = 0.5       # seconds between progress-line updates from report()
    tick_every = 1.0           # seconds between progress-line updates from the clock thread
    queued_click_window = 0.5  # a browser click handled this soon after a run was made during it
    overlay_runs = 5           # earlier runs drawn under the current curves

    def __init__(self, hp_class: type, run: Callable, *, title: str | None = None,
                 plots: Sequence[str] = ("loss", "accuracy"), auto_run: bool | None = None):
        if not (isinstance(hp_class, type) and dataclasses.is_dataclass(hp_class)):
            raise TypeError(f"Panel needs a dataclass of hyperparameters, got {hp_class!r}")
        try:
            hints = typing.get_type_hints(hp_class)
        except Exception:  # unresolvable annotations: fall back to the defaults' types
            hints = {}
        self.hp_class, self.run, self.title, self.plots = hp_class, run, title, tuple(plots)
        self.auto_run = (os.environ.get("SSLKIT_AUTO_RUN", "1") != "0"
                         if auto_run is None else auto_run)
        fields = [f for f in dataclasses.fields(hp_class) if f.init]
        self.widgets, self._types = {}, {}
        for f in fields:
            self.widgets[f.name], self._types[f.name] = _control(hp_class, f, hints.get(f.name))
        self.labels = {f.name: _label(f, f.metadata[_KEY]) for f in fields}
        self.defaults = {n: w.value for n, w in self.widgets.items()}
        self.button = W.Button(description="Train", button_style="primary", icon="play")
        self.button.on_click(self._click)
        self.clear_button = W.Button(description="Clear runs", icon="trash",
                                     tooltip="Forget the earlier runs (table and curves)")
        self.clear_button.on_click(lambda _: self.clear_runs())
        self.status, self.progress, self.table = W.HTML(), W.HTML(), W.HTML()
        self.progress_bar = W.FloatProgress(min=0.0, max=1.0, layout=W.Layout(width="160px"))
        self.log, self.output = W.Output(), W.Output()
        self.figure, self.history, self.last_result, self.runs = None, {}, None, 0
        self.results: list[dict] = []
        self._running, self._ignored, self._last_end, self._report = False, False, -math.inf, None
        self._lock = threading.Lock()
        self._set_status("Move the sliders, then press Train.")
        helps = {f.name: f.metadata[_KEY].help for f in fields}
        rows = [W.HBox([w, W.HTML(f"<small>{html.escape(helps[n])}</small>")]) if helps[n] else w
                for n, w in self.widgets.items()]
        head = [W.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        self.widget = W.VBox([*head, *rows, W.HBox([self.button, self.clear_button, self.status]),
                              W.HBox([self.progress_bar, self.progress]), self.log, self.output,
                              self.table])

    def values(self):
        """The current control values as an instance of ``hp_class`` (ints stay ints)."""
        cast = {n: (lambda v: v) if t is object else t for n, t in self._types.items()}
        return self.hp_class(**{n: cast[n](w.value) for n, w in self.widgets.items()})

    def _set_status(self, text: str, color: str = "inherit") -> None:
        self.status_text = text
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    # ------------------------------------------------------------------ progress
    def _expected(self, hp) -> tuple[float | None, float | None]:
        """(seconds for the whole run, seconds after the last step), from the last good run."""
        last = next((r for r in reversed(self.results) if r["ok"]), None)
        if last is None:
            return None, None
        scale = 1.0
        steps, before = getattr(hp, "steps", None), last["settings"].get("steps")
        if isinstance(steps, int) and isinstance(before, int) and before > 0:
            scale = steps / before
        return last["seconds"] * scale, last["after_steps"]

    def _progress_line(self, now: float) -> tuple[str, float | None]:
        """The progress text and the fraction done (None when unknown) of the current run."""
        r, (start, expected, after) = self._report, self._timing
        elapsed, left, parts = now - start, None, []
        total = r.total
        if r.step is not None and total and r.step < total:
            (s0, t0) = r.first
            parts.append(f"step {_exact(r.step)} of {total}")
            if r.step > s0:  # the pace between the first and the last reported step
                left = (total - r.step) * (r.last_time - t0) / (r.step - s0) + (after or 0.0)
            elif expected is not None:
                left = max(0.0, expected - elapsed)
        elif r.step is not None and (r.phase_name or (total and r.step >= total)):
            parts.append(f"{r.phase_name or 'evaluating'} after step {_exact(r.step)}")
            if after is not None:
                left = max(0.0, after - (now - r.last_time))
        else:
            if r.step is not None:
                parts.append(f"step {_exact(r.step)}")
            if r.phase_name:
                parts.append(r.phase_name)
            if expected is not None:
                left = max(0.0, expected - elapsed)
        parts.append(f"{_secs(elapsed)} elapsed")
        if left is not None:
            parts.append(f"about {_secs(left)} left" if left >= 1 else "almost done")
        fraction = elapsed / (elapsed + left) if left is not None and elapsed + left > 0 else None
        return f"Run {self.runs}: " + " · ".join(parts), fraction

    def _update_progress(self) -> None:
        with self._lock:
            if not self._running:
                return
            text, fraction = self._progress_line(time.perf_counter())
            self.progress.value = f"<small>{html.escape(text)}</small>"
            if fraction is not None:
                self.progress_bar.value = min(1.0, fraction)

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(self.tick_every):
            self._update_progress()

    # ------------------------------------------------------------------ runs
    def _changes(self, settings: dict) -> str:
        changed = [f"{n}={_fmt(v)}" for n, v in settings.items() if v != self.defaults[n]]
        return ", ".join(changed) if changed else "the default values"

    def _lock_controls(self, locked: bool) -> None:
        for w in (*self.widgets.values(), self.button, self.clear_button):
            w.disabled = locked

    def _ignore_click(self) -> None:
        self._ignored = True
        note = " (a second click was ignored: one run at a time)"
        if not self.status_text.endswith(note):
            self.status.value = self.status.value.replace("</span>", html.escape(note) + "</span>")
            self.status_text += note

    def _click(self, _button) -> None:
        queued = (_frontend_event()
                  and time.perf_counter() - self._last_end < self.queued_click_window)
        if self._running or queued:
            self._ignore_click()
            return
        with self.log:  # in a kernel, a handler bug's traceback is shown here, under the button
            self.train()

    def clear_runs(self) -> None:
        """Forget the earlier runs: empty the table and drop their curves from the next plots."""
        if not self._running:
            self.results.clear()
            self.table.value = ""

    def _draw(self, report: Report) -> None:
        names = [n for n in self.plots if report.points.get(n)]
        if not names:
            return
        fig = Figure(figsize=(4.2 * len(names), 3.0), layout="constrained")
        earlier = [r for r in self.results if r["ok"]][-self.overlay_runs:]
        for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names, strict=True):
            for r in earlier:
                if r["points"].get(name):
                    steps, values = zip(*r["points"][name], strict=True)
                    ax.plot(steps, values, color=f"C{(r['run'] - 1) % 10}", lw=1, alpha=0.45,
                            label=f"run {r['run']}")
            steps, values = zip(*report.points[name], strict=True)
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, lw=2,
                    color=f"C{(self.runs - 1) % 10}", label=f"run {self.runs}")
            ax.set(xlabel="step", ylabel=name, title=name)
            if earlier:
                ax.legend(fontsize=7)
        if self.title:
            fig.suptitle(self.title)
        self._show_figure(fig)

    def _show_figure(self, fig: Figure) -> None:
        self.figure = fig
        self.output.outputs = (_png_output(fig),)

    def _record(self, settings: dict, report: Report, seconds: float, metrics: dict | None,
                error: str | None = None, thumbnail: str | None = None) -> None:
        after = time.perf_counter() - report.last_time if report.last_time else None
        self.results.append(dict(run=self.runs, settings=settings, ok=error is None,
                                 metrics=metrics or {}, seconds=seconds, points=report.points,
                                 after_steps=after, error=error, thumbnail=thumbnail))
        self.table.value = self._table_html()

    def _table_html(self) -> str:
        """The runs so far: the settings that differ between them (or from the defaults), the
        metrics, the time and a thumbnail of a returned figure."""
        rows = self.results
        if not rows:
            return ""
        names = [n for n in self.widgets if len({repr(r["settings"][n]) for r in rows}) > 1
                 or any(r["settings"][n] != self.defaults[n] for r in rows)]
        metrics = list(dict.fromkeys(k for r in rows for k in r["metrics"]))
        cell = 'style="padding:2px 8px;text-align:right"'
        head = "".join(f"<th {cell}>{html.escape(h)}</th>" for h in
                       ["run", *(self.labels[n] for n in names), *metrics, "time"])
        body = []
        for r in rows:
            colour = _COLOURS[(r["run"] - 1) % len(_COLOURS)]  # the run's colour in the plots
            tds = f'<td {cell}><span style="color:{colour}">&#9632;</span> {r["run"]}</td>'
            tds += "".join(f"<td {cell}>{html.escape(_exact(r['settings'][n]))}</td>"
                           for n in names)
            if r["ok"]:
                tds += "".join(f"<td {cell}>{_fmt(r['metrics'][k]) if k in r['metrics'] else ''}"
                               "</td>" for k in metrics)
            else:
                tds += (f'<td {cell} colspan="{max(1, len(metrics))}" style="color:{_RED}">'
                        f"failed: {html.escape(r['error'])}</td>")
            tds += f"<td {cell}>{_secs(r['seconds'])}</td>"
            if r["thumbnail"]:
                tds += (f'<td><img width="160" src="data:image/png;base64,{r["thumbnail"]}">'
                        "</td>")
            body.append(f"<tr>{tds}</tr>")
        note = "" if names else " (all with the default settings)"
        return (f"<small><b>Runs so far</b>{note}; <i>Clear runs</i> empties this table.</small>"
                f"<table><tr>{head}</tr>{''.join(body)}</table>")

    def train(self, *, raise_errors: bool = False):
        """Run the handler once with the current values and return its result.

        Returns ``None`` without running while another run is going. A ``ValueError``,
        ``FloatingPointError`` or ``RuntimeError`` is shown in red in the status line and the
        previous plot stays (``None`` is returned; ``raise_errors`` re-raises it). Any other
        exception is a bug in the handler: it is noted in the status line and raised.
        """
        if self._running:
            self._ignore_click()
            return None
        previous = (self.figure, self.output.outputs)
        last_draw = [0.0, 0.0]  # last redraw, last progress update

        def on_point():
            now = time.perf_counter()
            if now - last_draw[0] >= self.redraw_every:
                self._draw(report)
                last_draw[0] = time.perf_counter()
            if now - last_draw[1] >= self.progress_every:
                self._update_progress()
                last_draw[1] = now

        hp = self.values()
        settings = dataclasses.asdict(hp)
        report, error, start, seconds = Report(on_point), None, time.perf_counter(), None
        steps = settings.get("steps")
        report.total = steps if isinstance(steps, int) and not isinstance(steps, bool) else None
        self._report, self._timing = report, (start, *self._expected(hp))
        self.history, self.runs = report.points, self.runs + 1
        self._running, self._ignored = True, False
        self._lock_controls(True)
        self.progress_bar.bar_style, self.progress_bar.value = "info", 0.0
        shown = (f" (the plot below is run {self.results[-1]['run']} until this run draws)"
                 if self.figure is not None and self.results else "")
        self._set_status(f"Training run {self.runs} with {self._changes(settings)}…{shown}")
        self._update_progress()
        stop = threading.Event()
        if _kernel() is not None and self.tick_every > 0:  # the clock: progress while blocked
            ctx = contextvars.copy_context()
            threading.Thread(target=ctx.run, args=(self._tick, stop), daemon=True).start()
        if _in_ipython():  # (outside IPython, clear_output would print escape codes)
            self.log.clear_output()
        try:
            with self.log:  # prints and tqdm bars land in the panel
                try:
                    result = self.run(hp, report)
                except Exception as err:  # handled below, outside the Output context
                    error = err
            seconds = time.perf_counter() - start
            if error is not None:
                self.figure, self.output.outputs = previous
                self._record(settings, report, seconds, None, f"{type(error).__name__}: {error}")
                self.progress_bar.bar_style = "danger"
                if not isinstance(error, (ValueError, FloatingPointError, RuntimeError)):
                    self._set_status(f"The handler failed: {type(error).__name__}: {error}", _RED)
                    raise error
                self._set_status(f"Could not train with {self._changes(settings)}: {error}", _RED)
                if raise_errors:
                    raise error
                return None
            self.last_result = result
            fig, metrics = (result if isinstance(result, tuple) and len(result) == 2
                            and isinstance(result[0], Figure) else (result, None))
            if isinstance(fig, Figure):
                if "matplotlib.pyplot" in sys.modules:  # else the inline backend shows it twice
                    sys.modules["matplotlib.pyplot"].close(fig)
                self._show_figure(fig)
            else:
                metrics = fig if isinstance(fig, dict) else None
                self._draw(report)
            final = metrics if metrics is not None else {
                n: pts[-1][1] for n, pts in report.points.items() if n in self.plots}
            self._record(settings, report, seconds, final,
                         thumbnail=_png(fig, dpi=30) if isinstance(fig, Figure) else None)
            summary = ", ".join(f"{k}={_fmt(v)}" for k, v in final.items())
            self._set_status(f"Done in {seconds:.1f} s (run {self.runs})"
                             + (f": {summary}" if summary else "."))
            self.progress_bar.bar_style, self.progress_bar.value = "success", 1.0
            return result
        finally:
            stop.set()
            with self._lock:
                self._running = False
                if report.step is not None:
                    took = _secs(seconds if seconds is not None else time.perf_counter() - start)
                    self.progress.value = (f"<small>Run {self.runs}: {_exact(report.step)} steps "
                                           f"in {took}</small>")
            self._lock_controls(False)
            self._last_end = time.perf_counter()
            if self._ignored:  # keep saying so under the final status
                self._ignore_click()

    def _bundle(self) -> dict:
        """The widget view plus a static fallback that frontends without widgets show (GitHub,
        nbviewer, the exported HTML, an untrusted notebook): the hint that running the cells
        brings the controls, the status line, the figure and the table as HTML, and as text."""
        data = dict(self.widget._repr_mimebundle_())
        data["text/plain"] = (f"{self.title or self.hp_class.__name__}: {self.status_text}\n"
                              f"({STATIC_HINT})")
        img = "".join(f'<img src="data:image/png;base64,{o["data"]["image/png"]}">'
                      for o in self.output.outputs if "image/png" in o.get("data", {}))
        title = f"<b>{html.escape(self.title)}</b><br>" if self.title else ""
        data["text/html"] = (f'<div class="sslkit-panel-static">{title}'
                             f'<p style="color:#8a5300">&#9654; {html.escape(STATIC_HINT)}</p>'
                             f"<p>{html.escape(self.status_text)}</p>{img}{self.table.value}"
                             "</div>")
        return data

    def show(self) -> None:
        """Display the panel; with ``auto_run`` (the default), train once with the defaults
        (errors raise: the defaults must work) and leave the result as a static fallback."""
        from IPython.display import display

        shell = _in_ipython()
        handle = display(self._bundle(), raw=True, display_id=True) if shell else None
        if self.auto_run and self.runs == 0:
            self.train(raise_errors=True)
            if handle is not None:
                handle.update(self._bundle(), raw=True)
        if not shell:
            print(self._bundle()["text/plain"].splitlines()[0])

    def _ipython_display_(self) -> None:
        self.show()
