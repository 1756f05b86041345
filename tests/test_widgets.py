"""The hyperparameter panel, driven without a kernel: set widget values, click the button."""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as W
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sslkit.train import NonFiniteLossError, TrainConfig  # noqa: E402
from sslkit.widgets import Panel, Report, hparam  # noqa: E402


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
    # An int log range is a 1-2-5 ladder of ints that keeps both ends and the default.
    assert isinstance(w["labels_per_class"], W.SelectionSlider)
    assert w["labels_per_class"].options == (1, 2, 5, 10, 20, 50, 100)
    assert w["labels_per_class"].value == 10
    assert isinstance(w["batch_size"], W.IntSlider)
    assert (w["batch_size"].min, w["batch_size"].max, w["batch_size"].value) == (1, 512, 64)
    # A float log range: the slider moves the exponent (base 10).
    t = w["temperature"]
    assert isinstance(t, W.FloatLogSlider)
    assert (t.base, t.min, t.max) == (10, pytest.approx(-2), pytest.approx(0))
    assert t.value == pytest.approx(0.1) and t.tooltip == "kNN vote temperature"
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


def test_button_is_disabled_and_status_says_training_while_running():
    seen = []
    panel = None

    def body(hp, report):
        seen.append((panel.button.disabled, panel.status.value))

    panel = Panel(HP, Recorder(body), auto_run=False)
    panel.button.click()
    assert seen == [(True, '<span style="color:inherit">training…</span>')]
    assert not panel.button.disabled


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
