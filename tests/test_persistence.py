"""Saving and loading (skae._persistence): a fitted estimator's state is plain data, so
skops can load it without trusting torch, and a crafted file cannot run code that way."""

import io
import os
import pickle
import pickletools
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from _settings import FAST, FAST_RNN, family_id
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
    model_card,
)

sio = pytest.importorskip("skops.io", reason="needs the skops extra: pip install skae[skops]")

ESTIMATORS = [
    AutoEncoder(2, **FAST),
    DenoisingAutoEncoder(2, **FAST),
    SparseAutoEncoder(4, **FAST),
    VariationalAutoEncoder(2, **FAST),
    RecurrentAutoEncoder(2, **FAST_RNN),
    AnomalyDetector(AutoEncoder(2, **FAST)),
]


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(30, 5))


@pytest.fixture(scope="module", params=ESTIMATORS, ids=family_id)
def fitted(request, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(request.param).fit(X)


def pickled_globals(obj) -> set[str]:
    """The module of every class or function a pickle of ``obj`` refers to."""
    modules = set()
    strings = []
    for opcode, arg, _ in pickletools.genops(pickle.dumps(obj)):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "STACK_GLOBAL":
            modules.add(strings[-2])
        elif opcode.name == "GLOBAL":
            modules.add(arg.split(" ")[0])
    return modules


def test_pickled_state_holds_no_torch_or_skorch_object(fitted):
    modules = pickled_globals(fitted)
    assert not {m for m in modules if m.split(".")[0] in ("torch", "skorch")}, modules


def test_skops_round_trip_trusts_only_skae_classes(fitted, X):
    data = sio.dumps(fitted)
    untrusted = sio.get_untrusted_types(data=data)
    assert untrusted and all(name.startswith("skae.") for name in untrusted), untrusted
    loaded = sio.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))
    if hasattr(fitted, "transform"):
        np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))


def test_pickle_and_joblib_round_trips_give_identical_outputs(fitted, X):
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    for loaded in (pickle.loads(pickle.dumps(fitted)), joblib.load(buffer)):
        np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))


def test_loaded_model_keeps_its_history_and_can_warm_start(X):
    ae = AutoEncoder(2, **{**FAST, "warm_start": True}).fit(X)
    loaded = sio.loads(
        sio.dumps(ae), trusted=["skae.autoencoder.AutoEncoder", "skae.architectures.MLP"]
    )
    assert [row["train_loss"] for row in loaded.history_] == ae.loss_curve_
    loaded.fit(X)
    assert loaded.n_iter_ == 2 * FAST["max_iter"]


def test_model_saved_from_cuda_loads_on_the_cpu_by_every_route(X, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ae = AutoEncoder(2, **FAST).fit(X)
    state = ae.__getstate__()
    state["_net_state"]["device"] = "cuda:0"  # as a model fitted on a GPU saves it
    monkeypatch.setattr(AutoEncoder, "__getstate__", lambda self: state)
    joblib_file = io.BytesIO()
    joblib.dump(ae, joblib_file)
    saved = [pickle.dumps(ae), sio.dumps(ae)]
    monkeypatch.undo()
    loaders = [
        lambda: pickle.loads(saved[0]),
        lambda: joblib.load(io.BytesIO(joblib_file.getvalue())),
        lambda: sio.loads(
            saved[1], trusted=["skae.autoencoder.AutoEncoder", "skae.architectures.MLP"]
        ),
    ]
    for load in loaders:
        with pytest.warns(UserWarning, match="no CUDA devices are available"):
            loaded = load()
        assert str(loaded.net_.device) == "cpu"
        np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))


def test_clone_pickle_and_joblib_round_trips(X_120x6, fitted_autoencoder, tmp_path):
    expected = fitted_autoencoder.transform(X_120x6)
    unpickled = pickle.loads(pickle.dumps(fitted_autoencoder))
    np.testing.assert_array_equal(unpickled.transform(X_120x6), expected)
    np.testing.assert_array_equal(
        unpickled.score_samples(X_120x6), fitted_autoencoder.score_samples(X_120x6)
    )
    joblib.dump(fitted_autoencoder, tmp_path / "ae.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "ae.joblib").transform(X_120x6), expected)
    cloned = clone(fitted_autoencoder)
    assert cloned.get_params() == fitted_autoencoder.get_params()
    with pytest.raises(NotFittedError):
        cloned.transform(X_120x6)
    np.testing.assert_array_equal(cloned.fit(X_120x6).transform(X_120x6), expected)


def test_model_saved_on_cuda_loads_on_a_cpu_only_machine(X_120x6, fitted_autoencoder):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; test_fit_and_reload_on_cuda covers it")
    # Pretend the net trained on CUDA: on unpickling without CUDA, skorch must
    # map its tensors to the CPU and say so, and skae must then infer there.
    model = pickle.loads(pickle.dumps(fitted_autoencoder))
    model.net_.device = "cuda"
    buffer = io.BytesIO()
    pickle.dump(model, buffer)
    buffer.seek(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = pickle.load(buffer)
    assert any("no CUDA devices are available" in str(w.message) for w in caught)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.transform(X_120x6), fitted_autoencoder.transform(X_120x6))


# --------------------------------------------------------------- payloads


class Payload:
    """Unpickling this runs a shell command (here: it creates a file)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def crafted(ae, monkeypatch, where, payload):
    """Save ``ae`` with ``payload`` planted ``where`` in its state."""
    state = ae.__getstate__()
    if where == "weights":
        name = next(iter(state["_net_state"]["weights"]))
        state["_net_state"]["weights"][name] = payload
    elif where == "history":
        state["_net_state"]["history"][0]["train_loss"] = payload
    else:
        state["loss_curve_"] = payload
    monkeypatch.setattr(AutoEncoder, "__getstate__", lambda self: state)
    return sio.dumps(ae), pickle.dumps(ae)


@pytest.mark.parametrize("where", ["weights", "history", "loss_curve_"])
def test_safe_route_refuses_a_code_payload_without_running_it(where, X, tmp_path, monkeypatch):
    ae = AutoEncoder(2, **FAST).fit(X)
    marker = tmp_path / "payload-ran"
    skops_bytes, pickle_bytes = crafted(ae, monkeypatch, where, Payload(str(marker)))
    monkeypatch.undo()

    untrusted = sio.get_untrusted_types(data=skops_bytes)
    assert "test_persistence.Payload" in untrusted, untrusted
    # The safe route: trust skae's own classes only.
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.loads(skops_bytes, trusted=["skae.autoencoder.AutoEncoder", "skae.architectures.MLP"])
    assert not marker.exists()

    # What pickle does with the same state: it runs the command.
    try:
        pickle.loads(pickle_bytes)
    except Exception:
        pass  # the model is unusable, but the command has already run
    assert marker.exists()


def test_a_non_numeric_weight_is_refused_on_load(X, monkeypatch):
    ae = AutoEncoder(2, **FAST).fit(X)
    state = ae.__getstate__()
    name = next(iter(state["_net_state"]["weights"]))
    state["_net_state"]["weights"][name] = "not an array"
    loaded = AutoEncoder.__new__(AutoEncoder)
    with pytest.raises(TypeError, match="not a numeric array"):
        loaded.__setstate__(state)


# ------------------------------------------------------------------ the model card


def table_value(card, name: str) -> str:
    """The value next to ``name`` in a two-column table of the rendered card."""
    for line in card.render().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] == name:
            return cells[1]
    raise AssertionError(f"no row {name!r} in the card's tables")


def card_metric(card, name: str) -> float:
    return float(table_value(card, name))


def test_model_card_and_skops_dump_make_a_folder_to_share(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(80, 5)), columns=[f"sensor_{i}" for i in range(5)])
    X_valid = X.iloc[:30] + 0.5  # shifted, so its error differs from the training error
    ae = AutoEncoder(2, early_stopping=True, **{**FAST, "max_iter": 8}).fit(X)

    card = model_card(ae, X_valid, folder=tmp_path / "share", description="Sensor model.")
    sio.dump(ae, tmp_path / "share" / "model.skops")
    assert sorted(p.name for p in (tmp_path / "share").iterdir()) == [
        "README.md",
        "model.skops",
        "training_curve.png",
    ]
    readme = (tmp_path / "share" / "README.md").read_text()
    assert readme == card.render()
    for part in (
        "Sensor model.",
        "skae.AutoEncoder",
        "## Hyperparameters",
        "## Input",
        "`sensor_4`",
        "(`input_shape_`): (5,)",
        "## Architecture",
        "Linear(in_features=5, out_features=8",
        "## Training curve",
        "](training_curve.png)",
        "validation loss",
        "## Environment",
        f"- torch {torch.__version__}",
        "## Evaluation Results",
        'sio.load("model.skops"',
    ):
        assert part in readme, part
    expected = np.mean((X_valid.to_numpy() - ae.inverse_transform(ae.transform(X_valid))) ** 2)
    assert card_metric(card, "mean squared reconstruction error") == pytest.approx(
        expected, abs=1e-5
    )
    assert card_metric(card, "validation samples") == 30
    assert table_value(card, "n_components") == "2"  # the hyperparameter table
    assert table_value(card, "early_stopping") == "True"
    saved = tmp_path / "share" / "model.skops"
    loaded = sio.load(saved, trusted=sio.get_untrusted_types(file=saved))
    np.testing.assert_array_equal(loaded.transform(X_valid), ae.transform(X_valid))


def test_model_card_plot_is_a_readable_figure(tmp_path):
    from matplotlib.image import imread

    X = np.random.RandomState(0).normal(size=(60, 5))
    model_card(AutoEncoder(2, **FAST).fit(X), folder=tmp_path)
    path = tmp_path / "training_curve.png"
    assert path.stat().st_size > 10_000  # a drawn figure, not an empty canvas
    image = imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 600  # readable at page width
    assert image[..., :3].std() > 0.05  # something drawn on it
    assert "No validation data was given." in (tmp_path / "README.md").read_text()


def test_model_card_of_a_detector_reports_its_outliers(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    X_valid = np.vstack([rng.normal(size=(40, 4)), rng.uniform(8, 9, size=(10, 4))])
    detector = AnomalyDetector(random_state=0).fit(X)
    card = model_card(detector, X_valid, folder=tmp_path)
    share = card_metric(card, "share labelled outliers")
    assert share == pytest.approx(np.mean(detector.decision_function(X_valid) < 0), abs=1e-4)
    assert share >= 10 / 50  # the planted outliers at least
    text = card.render()
    assert "AutoEncoderEnsemble" in text and "`offset_`" in text
    assert (tmp_path / "training_curve.png").stat().st_size > 10_000


def test_model_card_of_sequences(tmp_path):
    X = np.random.RandomState(0).normal(size=(20, 6, 2))
    model = RecurrentAutoEncoder(2, **FAST_RNN).fit(X)
    card = model_card(model, X[:5], folder=tmp_path)
    assert "(`input_shape_`): (6, 2)" in card.render()
    errors = (X[:5] - model.inverse_transform(model.transform(X[:5]))) ** 2
    assert card_metric(card, "mean squared reconstruction error") == pytest.approx(
        errors.mean(), abs=1e-5
    )


def test_model_card_refuses_what_it_cannot_describe(tmp_path, monkeypatch):
    from sklearn.decomposition import PCA

    with pytest.raises(NotFittedError):
        model_card(AutoEncoder(), folder=tmp_path)
    with pytest.raises(NotFittedError):
        model_card(AnomalyDetector(), folder=tmp_path)
    with pytest.raises(TypeError, match="got PCA"):
        model_card(PCA(2).fit(np.eye(3)), folder=tmp_path)
    fitted = AutoEncoder(2, **FAST).fit(np.eye(4))
    with pytest.raises(ValueError, match="features"):
        model_card(fitted, np.eye(3), folder=tmp_path / "card")
    assert not list(tmp_path.iterdir())  # nothing half-written
    monkeypatch.setitem(sys.modules, "skops.card", None)  # as if skops were missing
    with pytest.raises(ImportError, match=r"pip install skae\[skops\]"):
        model_card(fitted, folder=tmp_path)
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install skae\[plot\]"):
        model_card(fitted, folder=tmp_path)
