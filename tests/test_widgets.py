"""The hyperparameter panel, driven without a kernel: set widget values, click the button."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import ipywidgets as W
import matplotlib
import pytest
from traitlets import TraitError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sslkit.train import NonFiniteLossError, TrainConfig  # noqa: E402
from sslkit.widgets import STATIC_HINT, Panel, Report, hparam  # noqa: E402


@dataclass
class HP:
    encoder: str = hparam("random init", options=("raw pixels", "random init", "supervised"))
    labels_per_class: int = hparam(10, low=1, high=100, log=True)
    batch_size: int = hparam(64, low=1, high=512, step=1)
    temperature: float = hparam(0.1, low=0.01, high=1.0, log=True, help="kNN vote temperature")
    lr: float = hparam(1, low=0, high=50)  # an int default on a float field becomes a float
    normalize: bool = hparam(True)


class Recorder:
    """A handler that records the hyperparameters it was called with."""

    def __init__(self, body=None):
        self.calls, self.body = [], body

    def __call__(self, hp, report):
        self.calls.append(hp)
        return self.body(hp, report) if self.body else None


def quiet(panel: Panel) -> Panel:
    panel.redraw_every = math.inf  # draw only at the end: keeps the tests fast
    return panel


def test_controls_follow_the_declared_ranges():
    w = Panel(HP, Recorder(), auto_run=False).widgets
    assert list(w) == ["encoder", "labels_per_class", "batch_size", "temperature", "lr",
                       "normalize"]
    assert isinstance(w["encoder"], W.Dropdown)
    assert w["encoder"].options == ("raw pixels", "random init", "supervised")
    assert w["encoder"].value == "random init"
    # An int log range is a 1-2-3-5 ladder of ints that keeps both ends and the default.
    assert isinstance(w["labels_per_class"], W.SelectionSlider)
    assert [v for _, v in w["labels_per_class"].options] == [1, 2, 3, 5, 10, 20, 30, 50, 100]
    assert w["labels_per_class"].value == 10
    assert w["labels_per_class"].description == "labels per class"  # in words
    assert isinstance(w["batch_size"], W.IntSlider)
    assert (w["batch_size"].min, w["batch_size"].max, w["batch_size"].value) == (1, 512, 64)
    # A float log range: a ladder of decimal values 1, 1.5, 2, 3, 5, 7 × 10^k.
    t = w["temperature"]
    assert isinstance(t, W.SelectionSlider)
    assert [v for _, v in t.options] == [0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2,
                                         0.3, 0.5, 0.7, 1.0]
    assert t.value == 0.1 and t.tooltip == "kNN vote temperature"
    assert isinstance(w["lr"], W.FloatSlider) and not isinstance(w["lr"], W.FloatLogSlider)
    assert (w["lr"].min, w["lr"].max, w["lr"].value) == (0, 50, 1.0)
    assert isinstance(w["normalize"], W.Checkbox) and w["normalize"].value is True


def test_click_runs_the_handler_with_exactly_the_widget_values():
    run = Recorder()
    panel = Panel(HP, run, auto_run=False)
    assert run.calls == []  # building a panel trains nothing
    values = dict(encoder="supervised", labels_per_class=50, batch_size=7, temperature=0.5,
                  lr=2.5, normalize=False)
    for name, value in values.items():
        panel.widgets[name].value = value
    panel.button.click()
    assert len(run.calls) == 1
    hp = run.calls[0]
    assert isinstance(hp, HP) and hp == HP(**values) == panel.values()
    assert type(hp.labels_per_class) is int and type(hp.batch_size) is int
    assert type(hp.lr) is float and type(hp.normalize) is bool
    assert type(Panel(HP, run, auto_run=False).values().lr) is float  # default 1 → 1.0


def test_reported_points_are_recorded_and_plotted_with_labelled_axes():
    def body(hp, report):
        for step in range(0, 50, 10):
            report(step=step, loss=1 / (step + 1), accuracy=step / 100, lr=0.1)
        report(loss=0.01)  # without step: a running count (the 6th call → step 5)
        return {"accuracy": 0.9123}

    panel = quiet(Panel(HP, Recorder(body), title="probe", auto_run=False))
    panel.button.click()
    assert panel.history["loss"][:2] == [(0, 1.0), (10, 1 / 11)]
    assert panel.history["loss"][-1] == (5, 0.01)
    assert panel.history["accuracy"] == [(0, 0.0), (10, 0.1), (20, 0.2), (30, 0.3), (40, 0.4)]
    assert len(panel.history["lr"]) == 5  # recorded, but not one of the plotted metrics
    axes = panel.figure.axes
    assert [(a.get_xlabel(), a.get_ylabel()) for a in axes] == [("step", "loss"),
                                                                ("step", "accuracy")]
    assert list(axes[1].lines[0].get_ydata()) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert panel.figure.get_suptitle() == "probe"
    assert [set(o["data"]) for o in panel.output.outputs] == [{"image/png", "text/plain"}]
    assert panel.last_result == {"accuracy": 0.9123}
    assert "accuracy=0.912" in panel.status.value and "Done" in panel.status.value


def test_live_redraw_is_throttled_and_always_happens_at_the_end(monkeypatch):
    def body(hp, report):
        for step in range(20):
            report(step=step, loss=1.0)

    panel = Panel(HP, Recorder(body), auto_run=False)
    draws = []
    monkeypatch.setattr(panel, "_draw", lambda report: draws.append(len(report.points["loss"])))
    panel.redraw_every = math.inf
    panel.train()
    assert draws == [20]  # only the final draw
    draws.clear()
    panel.redraw_every = 0.0
    panel.train()
    assert draws == [*range(1, 21), 20]  # every point, then the final draw


def test_every_control_is_disabled_while_running_and_enabled_after():
    seen = []
    panel = None

    def body(hp, report):
        controls = [*panel.widgets.values(), panel.button, panel.clear_button]
        seen.append(([w.disabled for w in controls], panel.status_text, panel.progress.value))

    panel = Panel(HP, Recorder(body), auto_run=False)
    panel.button.click()
    disabled, status, progress = seen[0]
    assert all(disabled) and len(disabled) == 8
    assert status == "Training run 1 with the default values…"
    assert "Run 1: " in progress and "elapsed" in progress
    assert not any(w.disabled for w in [*panel.widgets.values(), panel.button,
                                        panel.clear_button])


def test_a_second_click_during_a_run_does_not_start_a_second_run():
    panel = None

    def body(hp, report):
        panel.button.click()  # re-entrant click (a kernel that handles messages while busy)
        assert panel.train() is None

    run = Recorder(body)
    panel = Panel(HP, run, auto_run=False)
    panel.button.click()
    assert len(run.calls) == 1 and panel.runs == 1
    assert "a second click was ignored" in panel.status_text and "Done in" in panel.status_text


def test_a_click_the_browser_sent_during_the_run_is_ignored(monkeypatch):
    """In a kernel, a double click's second message waits until the first run ends and is
    handled right after it: it must not start a second run."""
    import sslkit.widgets as sw

    monkeypatch.setattr(sw, "_frontend_event", lambda: True)
    run = Recorder()
    panel = Panel(HP, run, auto_run=False)
    panel.button.click()
    panel.button.click()  # handled a moment after the run ended: queued during it
    assert len(run.calls) == 1 and "ignored" in panel.status_text
    panel.queued_click_window = 0.0  # a click made after the run ended (the learner's next one)
    panel.button.click()
    assert len(run.calls) == 2
    monkeypatch.setattr(sw, "_frontend_event", lambda: False)  # a click from code is never stale
    panel.queued_click_window = math.inf
    panel.button.click()
    assert len(run.calls) == 3


def test_progress_line_gives_step_elapsed_and_time_left():
    panel = Panel(HP, Recorder(), auto_run=False)
    report = Report()
    report.total, report.first, report.step, report.last_time = 100, (10, 1.0), 50, 5.0
    panel.runs, panel._report, panel._timing = 3, report, (0.0, None, 2.0)
    text, fraction = panel._progress_line(now=5.0)  # 0.1 s per step, 2 s of probe after
    assert text == "Run 3: step 50 of 100 · 5 s elapsed · about 7 s left"
    assert fraction == pytest.approx(5 / 12)
    report.step, report.last_time = 100, 10.0  # the last step: now the probe runs
    text, _ = panel._progress_line(now=11.0)
    assert text == "Run 3: evaluating after step 100 · 11 s elapsed · about 1 s left"
    report.phase("linear probe")
    assert "linear probe after step 100" in panel._progress_line(now=11.0)[0]
    quiet_report = Report()  # a handler that never reports: estimated from the last run
    panel._report, panel._timing = quiet_report, (0.0, 30.0, None)
    assert panel._progress_line(now=12.0)[0] == "Run 3: 12 s elapsed · about 18 s left"


def test_expected_time_scales_with_the_steps_of_the_last_run():
    @dataclass
    class StepsHP:
        steps: int = hparam(100, low=10, high=1000, log=True, unit="steps")

    panel = Panel(StepsHP, Recorder(), auto_run=False)
    assert panel.widgets["steps"].description == "steps (steps)"
    panel.results.append(dict(run=1, ok=True, settings={"steps": 100}, seconds=20.0,
                              after_steps=3.0))
    assert panel._expected(StepsHP(steps=200)) == (40.0, 3.0)


def test_progress_updates_while_a_silent_handler_runs(monkeypatch):
    """A handler that never calls report (a probe, a theory sweep) still shows the clock."""
    import time

    import sslkit.widgets as sw

    monkeypatch.setattr(sw, "_kernel", lambda: object())  # as in a kernel: the clock thread runs
    panel = None
    seen = []

    def body(hp, report):
        before = panel.progress.value
        time.sleep(1.3)
        seen.append((before, panel.progress.value))

    panel = Panel(HP, Recorder(body), auto_run=False)
    panel.tick_every = 0.05
    panel.button.click()
    before, during = seen[0]
    assert "&lt;1 s elapsed" in before and "1 s elapsed" in during and "&lt;" not in during


def test_report_updates_the_progress_line_throttled():
    panel = None
    lines = []

    @dataclass
    class StepsHP:
        steps: int = hparam(10, low=1, high=100)

    def body(hp, report):
        for step in range(1, hp.steps + 1):
            report(step=step, loss=1.0)
            lines.append(panel.progress.value)

    panel = quiet(Panel(StepsHP, Recorder(body), auto_run=False))
    panel.progress_every = 0.0
    panel.button.click()
    assert "step 5 of 10" in lines[4] and "step 9 of 10" in lines[8]
    assert "evaluating after step 10" in lines[9]
    lines.clear()
    panel.progress_every = math.inf  # only the first report updates it
    panel.button.click()
    assert len(set(lines)) == 1


def test_runs_accumulate_in_a_table_and_on_the_plot_until_cleared():
    def body(hp, report):
        for step in range(3):
            report(step=step, loss=hp.temperature * (3 - step))
        return {"accuracy": 0.5 + hp.temperature}

    panel = quiet(Panel(HP, Recorder(body), auto_run=False))
    for t in (0.1, 0.05, 0.3):
        panel.widgets["temperature"].value = t
        panel.button.click()
    assert [r["settings"]["temperature"] for r in panel.results] == [0.1, 0.05, 0.3]
    assert [r["metrics"]["accuracy"] for r in panel.results] == [0.6, 0.55, 0.8]
    table = panel.table.value
    assert "<th" in table and ">temperature<" in table and ">batch size<" not in table
    assert ">0.05<" in table and ">0.55<" in table and table.count("<tr>") == 4
    lines = panel.figure.axes[0].lines  # earlier runs stay on the plot, the current one last
    assert [ln.get_label() for ln in lines] == ["run 1", "run 2", "run 3"]
    assert list(lines[-1].get_ydata()) == pytest.approx([0.9, 0.6, 0.3])
    panel.clear_button.click()
    assert panel.results == [] and panel.table.value == ""
    panel.button.click()
    assert [ln.get_label() for ln in panel.figure.axes[0].lines] == ["run 4"]


def test_a_failed_run_is_listed_and_a_figure_gets_a_thumbnail():
    def body(hp, report):
        if hp.lr > 10:
            raise ValueError("lr too large")
        fig = Figure()
        fig.subplots().plot([0, 1])
        return fig, {"accuracy": 0.25}

    panel = quiet(Panel(HP, Recorder(body), auto_run=False))
    panel.button.click()
    panel.widgets["lr"].value = 20.0
    panel.button.click()
    assert [r["ok"] for r in panel.results] == [True, False]
    assert panel.results[0]["metrics"] == {"accuracy": 0.25} and panel.results[0]["thumbnail"]
    assert "failed: ValueError: lr too large" in panel.table.value
    assert "data:image/png;base64," in panel.table.value


def test_log_controls_hold_the_lectures_values_exactly():
    """A log slider over exponents turned τ = 0.05 into 0.0502 and lr = 0.003 into 0.00306."""
    @dataclass
    class LectureHP:
        temperature: float = hparam(0.5, low=0.02, high=2.0, log=True, label="temperature τ")
        lr: float = hparam(0.003, low=1e-4, high=3e-2, log=True, include=(0.0042,))
        steps: int = hparam(200, low=20, high=2000, log=True)

    run = Recorder()
    panel = Panel(LectureHP, run, auto_run=False)
    labels = {n: [label for label, _ in w.options] for n, w in panel.widgets.items()}
    assert {"0.05", "0.07", "0.1", "0.2", "0.5"} <= set(labels["temperature"])
    assert {"0.0001", "0.001", "0.003", "0.0042", "0.01", "0.03"} <= set(labels["lr"])
    assert {"20", "30", "50", "100", "200", "300", "1000", "2000"} <= set(labels["steps"])
    panel.button.click()  # the defaults, exactly
    assert run.calls[-1] == LectureHP()
    for t, lr, steps in [(0.05, 0.003, 300), (0.07, 0.0042, 1000), (0.1, 0.0001, 20)]:
        panel.widgets["temperature"].value = t
        panel.widgets["lr"].value = lr
        panel.widgets["steps"].value = steps
        panel.button.click()
        hp = run.calls[-1]
        assert (hp.temperature, hp.lr, hp.steps) == (t, lr, steps)  # ==, not approx
        assert type(hp.steps) is int and type(hp.lr) is float
    assert panel.widgets["temperature"].description == "temperature τ"
    with pytest.raises(TraitError):
        panel.widgets["lr"].value = 0.00306  # not on the ladder


def _config_error(hp, report):
    report(step=0, loss=5.0)
    TrainConfig(steps=1, lr=hp.lr, batch_size=hp.batch_size)  # the real _validate message


def _nan(hp, report):
    report(step=0, loss=5.0)
    raise NonFiniteLossError("The loss became nan at step 3")


def _runtime(hp, report):
    raise RuntimeError("CUDA out of memory")


@pytest.mark.parametrize("body, message", [
    (_config_error, "lr=20.0 is invalid: allowed range is (0, 10]"),
    (_nan, "The loss became nan at step 3"),
    (_runtime, "CUDA out of memory"),
])
def test_handler_errors_go_to_the_status_line_and_keep_the_previous_plot(body, message):
    def ok(hp, report):
        report(step=0, loss=1.0, accuracy=0.5)

    run = Recorder(ok)
    panel = quiet(Panel(HP, run, auto_run=False))
    panel.button.click()
    figure, outputs = panel.figure, panel.output.outputs
    run.body = body
    panel.widgets["lr"].value = 20.0
    panel.widgets["batch_size"].value = 1
    panel.redraw_every = 0.0  # the failing run draws its partial curve live…
    panel.button.click()  # …must not raise…
    assert len(run.calls) == 2
    assert "Could not train with batch_size=1, lr=20: " in panel.status.value
    assert message in panel.status_text and "color:#c62828" in panel.status.value
    assert "Traceback" not in panel.status.value
    assert not panel.button.disabled
    assert panel.figure is figure and panel.output.outputs == outputs  # …and is undone


def test_unexpected_errors_propagate_but_the_button_comes_back():
    def bug(hp, report):
        raise TypeError("a bug in the handler")

    panel = Panel(HP, Recorder(bug), auto_run=False)
    with pytest.raises(TypeError, match="a bug in the handler"):
        panel.train()
    assert "The handler failed: TypeError: a bug in the handler" in panel.status_text
    assert not panel.button.disabled
    panel.button.click()  # a click goes through ipywidgets, which logs the exception
    assert panel.runs == 2 and not panel.button.disabled


def test_a_returned_figure_is_shown_instead_of_the_curves():
    def body(hp, report):
        report(step=0, loss=1.0)
        fig, ax = plt.subplots()
        ax.plot([10, 100], [0.5, 0.1])
        ax.set(xlabel="labelled examples n", ylabel="excess risk")
        return fig

    panel = quiet(Panel(HP, Recorder(body), auto_run=False))
    panel.button.click()
    fig = panel.last_result
    assert panel.figure is fig and fig.axes[0].get_ylabel() == "excess risk"
    assert not plt.fignum_exists(fig.number)  # closed, so a backend does not show it twice
    assert len(panel.output.outputs) == 1 and "image/png" in panel.output.outputs[0]["data"]


def test_headless_display_runs_the_handler_once_with_the_defaults(capsys):
    run = Recorder(lambda hp, report: {"accuracy": 0.5})
    panel = quiet(Panel(HP, run))
    panel.show()
    panel.show()  # showing again does not train again
    assert run.calls == [HP()] and panel.runs == 1
    assert "HP: Done in" in capsys.readouterr().out
    Panel(HP, run, auto_run=False).show()
    assert len(run.calls) == 1


def test_auto_run_can_be_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("SSLKIT_AUTO_RUN", "0")
    run = Recorder()
    Panel(HP, run).show()
    assert run.calls == []


def test_headless_display_in_ipython_keeps_widget_view_and_static_fallback():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    def body(hp, report):
        report(step=0, loss=1.0)
        return {"accuracy": 0.75}

    run = Recorder(body)
    panel = quiet(Panel(HP, run, title="probe"))
    InteractiveShell.instance()
    try:
        with capture_output() as captured:
            display(panel)
    finally:
        InteractiveShell.clear_instance()
    assert run.calls == [HP()]
    data = captured.outputs[-1].data  # the display after the run (updated in place)
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id
    assert "accuracy=0.75" in data["text/plain"]
    assert "data:image/png;base64," in data["text/html"]
    # the static copy says how to get the controls (untrusted notebooks, exported HTML)
    assert html.escape(STATIC_HINT) in data["text/html"] and STATIC_HINT in data["text/plain"]
    assert "Runs so far" in data["text/html"] and ">0.75<" in data["text/html"]


def test_exported_html_shows_the_static_fallback_offline(tmp_path):
    """``make run``'s HTML export picks the panel's text/html, not a CDN-loaded widget view."""
    import nbformat

    from sslkit.course import _export_html

    def body(hp, report):
        fig = Figure()
        fig.subplots().plot([0, 1])
        return fig

    panel = quiet(Panel(HP, Recorder(body), title="probe"))
    panel.train()
    bundle = panel._bundle()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("Panel(HP, body)", outputs=[
        nbformat.v4.new_output("display_data", data=bundle)]))
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0, "state": {}}}
    _export_html(nb, tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text()
    assert html.escape(STATIC_HINT) in page and "sslkit-panel-static" in page
    assert "data:image/png;base64," in page and "Done in" in page
    assert "widget-view+json" not in page and "widget-state+json" not in page
    assert "html-manager" not in page and "unpkg" not in page and "jsdelivr" not in page


def test_failing_defaults_raise_when_shown():
    def body(hp, report):
        raise ValueError("batch_size=64 is invalid")

    panel = Panel(HP, Recorder(body))
    with pytest.raises(ValueError, match="batch_size=64"):
        panel.show()
    assert "Could not train with the default values" in panel.status_text
    assert not panel.button.disabled


def _declare(**fields):
    namespace = {"__annotations__": {k: type(v.default) for k, v in fields.items()}, **fields}
    return dataclass(type("Bad", (), namespace))


@pytest.mark.parametrize("field, match", [
    (hparam(5, low=10, high=1), r"Bad\.x\.high=1 is invalid"),
    (hparam(0.5, low=1.0, high=1.0), r"Bad\.x\.high=1.0 is invalid"),
    (hparam(200, low=1, high=100), r"Bad\.x=200 is invalid: allowed range is \[1, 100\]"),
    (hparam(0.5, low=0.0, high=1.0, log=True), r"Bad\.x\.low=0.0 is invalid.*log range"),
    (hparam(0.5, low=0.1, high=1.0, step=-0.1), r"Bad\.x\.step=-0.1"),
    (hparam("a", options=()), r"Bad\.x: options=\(\) must be non-empty"),
    (hparam("z", options=("a", "b")), r"Bad\.x='z' is invalid: choose one of 'a', 'b'"),
    (hparam(3, low=0.5, high=10), r"Bad\.x: an int field needs int"),
    (hparam(3, low=1), r"Bad\.x=3: declare low= and high="),
    (hparam("a"), r"Bad\.x='a': declare low= and high=.*or options="),
    (hparam(True, low=0, high=1), r"Bad\.x: a bool field"),
    (hparam(5, low=1, high=10, log=True, step=2), r"Bad\.x: an int log range"),
    (hparam(0.5, low=0.1, high=1.0, log=True, include=(2.0,)), r"Bad\.x\.include=2.0 is invalid"),
    (hparam(0.5, low=0.1, high=1.0, include=(0.2,)), r"Bad\.x: include= adds values to a log"),
])
def test_invalid_declarations_raise_naming_the_field(field, match):
    with pytest.raises(ValueError, match=match):
        Panel(_declare(x=field), Recorder())


def test_plain_fields_and_non_dataclasses_are_rejected():
    @dataclass
    class Plain:
        seed: int = 0

    with pytest.raises(ValueError, match=r"Plain\.seed has no declared range"):
        Panel(Plain, Recorder())
    with pytest.raises(TypeError, match="dataclass"):
        Panel(dict, Recorder())


def test_report_progress_is_a_tqdm_bar(monkeypatch):
    monkeypatch.setenv("SSLKIT_PROGRESS", "0")
    report = Report()
    assert list(report.progress(range(3))) == [0, 1, 2]
    assert report.progress(range(3)).disable
