"""The callbacks skae adds to a fit: what ``verbose`` prints in a log, a terminal and a notebook."""

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from _settings import FAST

import skae
from skae import AutoEncoder
from skae._callbacks import progress_display

LOUD = {**FAST, "max_iter": 20, "tol": None}


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_verbose_1_in_a_log_prints_whole_lines_on_stdout(X_120x6, capfd):
    AutoEncoder(n_components=2, **LOUD, verbose=1).fit(X_120x6)
    out, err = capfd.readouterr()
    assert "\r" not in out and err == ""  # one stream, no carriage returns
    lines = out.splitlines()
    assert lines[0] == "AutoEncoder: up to 20 epochs on cpu"
    # A line every tenth of the epochs (2 of 20), the last epoch's is the final line.
    assert [ln.split(":")[0] for ln in lines[1:-1]] == [f"epoch {i}/20" for i in range(2, 20, 2)]
    assert all("loss=" in ln and "elapsed" in ln for ln in lines[1:-1])
    assert lines[-1].startswith("AutoEncoder: 20 epochs in ") and "loss=" in lines[-1]


def test_verbose_2_in_a_log_prints_a_line_per_epoch_in_one_stream(X_120x6, capfd):
    ae = AutoEncoder(n_components=2, **LOUD, verbose=2, early_stopping=True, n_iter_no_change=2)
    ae.set_params(max_iter=40).fit(X_120x6)
    out, err = capfd.readouterr()
    assert "\r" not in out and err == ""
    epochs = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == ae.n_iter_
    assert all("val_score=" in ln for ln in epochs)
    final = out.splitlines()[-1]
    if ae.n_iter_ < 40:
        assert final.startswith(f"AutoEncoder: stopped after {ae.n_iter_} of 40 epochs in ")
    else:
        assert final.startswith("AutoEncoder: 40 epochs in ")


def test_partial_fit_in_a_log_prints_one_line_a_call(X_120x6, capsys):
    ae = AutoEncoder(n_components=2, **LOUD, verbose=1)
    ae.partial_fit(X_120x6).partial_fit(X_120x6)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(ln.startswith("AutoEncoder: 1 epoch in ") for ln in lines)


def test_a_terminal_gets_the_bar_on_stderr(X_120x6, monkeypatch, capsys):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert progress_display() == "bar"
    AutoEncoder(n_components=2, **LOUD, verbose=1).fit(X_120x6)
    bar = terminal.getvalue()
    assert "\r" in bar and "20/20" in bar and "epoch" in bar
    assert capsys.readouterr().out == ""  # verbose=1: the bar only


def test_a_closed_or_missing_stderr_gets_lines(monkeypatch):
    closed = io.StringIO()
    closed.close()  # its isatty() raises ValueError
    monkeypatch.setattr(sys, "stderr", closed)
    assert progress_display() == "lines"
    monkeypatch.setattr(sys, "stderr", None)
    assert progress_display() == "lines"


def test_the_fitted_net_keeps_no_stream(X_120x6, capsys):
    ae = AutoEncoder(n_components=2, **LOUD, verbose=1).fit(X_120x6)
    bar = dict(ae.net_.callbacks_)["progress_bar"]
    assert not hasattr(bar, "bar_") and not hasattr(bar, "display_")


NOTEBOOK_CELL = """\
import sys
sys.path.insert(0, {root!r})
import numpy as np, torch
torch.set_num_threads(1)
from skae import AutoEncoder
X = np.random.RandomState(0).normal(size=(60, 4))
ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_iter=5, tol=None, device="cpu", verbose=1,
                 random_state=0).fit(X)
"""


def test_a_notebook_gets_the_widget_bar_and_no_carriage_returns(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("ipywidgets")
    root = str(Path(skae.__file__).resolve().parent.parent)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(NOTEBOOK_CELL.format(root=root)))
    # The kernel is this interpreter (ipykernel's own kernel spec).
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    client.execute(env=env)
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    widget = "application/vnd.jupyter.widget-view+json"
    widgets = [o for o in outputs if widget in o.get("data", {})]
    assert widgets, json.dumps(outputs, default=str)[:2000]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "\r" not in text and "epoch 2/5" not in text  # no text bar, no log lines
    # nbclient keeps the widgets' last state: the bar reached all 5 epochs.
    states = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in states.values() if m["model_name"] == "FloatProgressModel"]
    assert [(bar["value"], bar["max"]) for bar in bars] == [(5, 5)]


def test_verbose_0_prints_nothing(X_120x6, capfd):
    AutoEncoder(n_components=2, **LOUD).fit(X_120x6)
    assert capfd.readouterr() == ("", "")


def test_the_line_schedule_survives_few_epochs(X_120x6, capsys):
    AutoEncoder(n_components=2, **{**LOUD, "max_iter": 3}, verbose=1).fit(X_120x6)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == [
        "AutoEncoder",
        "epoch 1/3",
        "epoch 2/3",
        "AutoEncoder",
    ]
    assert np.all(["\r" not in ln for ln in lines])
