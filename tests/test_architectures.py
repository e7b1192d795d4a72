"""The architecture parameter: every objective on every network, shapes as fitted state."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import get_tags
from torch import nn

from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)
from skae.architectures import (
    MLP,
    Architecture,
    Convolutional1D,
    Convolutional2D,
    PatchMLP,
    PooledSequence,
    Recurrent,
)

FAST = dict(max_iter=2, batch_size=16, tol=None, random_state=0, device="cpu")
RNG = np.random.RandomState(0)


class TinyLinear(nn.Module):
    """A hand-written table module: one linear layer each way."""

    def __init__(self, n_features, n_outputs, n_components):
        super().__init__()
        self.encoder = nn.Linear(n_features, n_outputs)
        self.decoder = nn.Linear(n_components, n_features)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)


class TinyLinearArchitecture(Architecture):
    input_kind = "table"

    def __init__(self, bias=True):
        self.bias = bias

    def build(self, input_shape, n_components, n_outputs):
        return TinyLinear(input_shape[0], n_outputs, n_components)


def images(n=24, size=(8, 8)):
    return RNG.uniform(size=(n, *size))


def sequences(n=12, n_features=2):
    """Variable-length sequences as a list of (n_timesteps_i, n_features) arrays."""
    return [RNG.uniform(size=(RNG.randint(3, 9), n_features)) for _ in range(n)]


# (architecture, training data, form of the reconstructions)
CASES = {
    "mlp": (lambda: MLP((8,)), lambda: RNG.uniform(size=(24, 6))),
    "custom": (lambda: TinyLinearArchitecture(), lambda: RNG.uniform(size=(24, 6))),
    "conv2d-hw": (lambda: Convolutional2D(channels=(4, 8)), lambda: images()),
    "conv2d-chw": (lambda: Convolutional2D(channels=(4,)), lambda: RNG.uniform(size=(24, 3, 7, 5))),
    "conv2d-flat": (
        lambda: Convolutional2D((8, 8), channels=(4,)),
        lambda: images().reshape(24, -1),
    ),
    "conv1d": (lambda: Convolutional1D(channels=(4, 4)), lambda: RNG.uniform(size=(24, 19))),
    "conv1d-channels": (
        lambda: Convolutional1D(channels=(4,)),
        lambda: RNG.uniform(size=(24, 2, 9)),
    ),
    "patchmlp-chw": (
        lambda: PatchMLP(hidden_layer_sizes=(8,), remove_mean=False),
        lambda: RNG.uniform(size=(24, 3, 7, 5)),
    ),
    "recurrent-2d": (lambda: Recurrent(hidden_size=8), lambda: RNG.uniform(size=(24, 7))),
    "recurrent-list": (lambda: Recurrent(cell="gru", hidden_size=8), lambda: sequences()),
    "pooled-2d": (
        lambda: PooledSequence(channels=(4,), hidden_size=8),
        lambda: RNG.uniform(size=(24, 7)),
    ),
    "pooled-list": (
        lambda: PooledSequence(channels=(4, 4), cell="lstm", hidden_size=8),
        lambda: sequences(),
    ),
}

OBJECTIVES = {
    "plain": lambda arch: AutoEncoder(3, architecture=arch, **FAST),
    "denoising-gaussian": lambda arch: DenoisingAutoEncoder(3, architecture=arch, **FAST),
    "denoising-salt-pepper": lambda arch: DenoisingAutoEncoder(
        3, architecture=arch, noise="salt_pepper", noise_level=0.3, **FAST
    ),
    "sparse-l1": lambda arch: SparseAutoEncoder(4, architecture=arch, **FAST),
    "sparse-topk": lambda arch: SparseAutoEncoder(
        4, architecture=arch, sparsity="topk", k=2, **FAST
    ),
    "variational-gaussian": lambda arch: VariationalAutoEncoder(2, architecture=arch, **FAST),
    "variational-bernoulli": lambda arch: VariationalAutoEncoder(
        2, architecture=arch, likelihood="bernoulli", **FAST
    ),
}


def shape_of(X):
    return [x.shape for x in X] if isinstance(X, list) else X.shape


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_fits_and_scores_on_every_architecture(objective, case):
    make_arch, make_X = CASES[case]
    X = make_X()
    est = OBJECTIVES[objective](make_arch()).fit(X)
    codes = est.transform(X)
    assert codes.shape == (len(X), est.n_components)
    assert np.isfinite(codes).all()
    if objective == "sparse-topk":
        assert ((codes != 0).sum(axis=1) <= 2).all()
    scores = est.score_samples(X)
    assert scores.shape == (len(X),) and np.isfinite(scores).all()
    if case.endswith("-list"):
        lengths = [len(x) for x in X]
        recon = est.inverse_transform(codes, n_timesteps=lengths)
    else:
        recon = est.inverse_transform(codes)
    # Reconstructions come back in the form of the training input.
    assert shape_of(recon) == shape_of(X)
    if objective.startswith("variational") and not case.endswith("-list"):
        assert shape_of(est.sample(3, random_state=0))[1:] == shape_of(X)[1:]


@pytest.mark.parametrize(
    "size", [(28, 28), (8, 8), (7, 9), (5, 5), (1, 3)], ids=lambda s: "x".join(map(str, s))
)
def test_convolutions_reconstruct_exactly_the_input_size(size):
    # Stride 2 twice: 28 -> 14 -> 7, 7 -> 4 -> 2, 5 -> 3 -> 2, 1 -> 1 -> 1 and back.
    X = RNG.uniform(size=(4, *size))
    est = AutoEncoder(2, architecture=Convolutional2D(channels=(2, 2)), **FAST).fit(X)
    assert est.inverse_transform(est.transform(X)).shape == X.shape
    assert est.input_shape_ == (1, *size)


@pytest.mark.parametrize("estimator", [DenoisingAutoEncoder, SparseAutoEncoder])
def test_patch_mlp_keeps_the_mean_out_of_the_network(estimator):
    # The encoder sees each window minus its channel means, so shifting a
    # channel's brightness shifts its reconstruction by as much, whatever the
    # weights; the means are the code's last c entries.
    X = RNG.uniform(size=(24, 2, 6, 5))
    est = estimator(5, architecture=PatchMLP(hidden_layer_sizes=(8,)), **FAST).fit(X)
    shift = np.array([0.3, -0.2])[None, :, None, None]
    base = est.inverse_transform(est.transform(X))
    np.testing.assert_allclose(
        est.inverse_transform(est.transform(X + shift)), base + shift, atol=1e-5
    )
    np.testing.assert_allclose(est.transform(X)[:, -2:], X.mean(axis=(2, 3)), atol=1e-6)
    flat = PatchMLP((2, 6, 5), hidden_layer_sizes=(8,))
    flat_est = estimator(5, architecture=flat, **FAST).fit(X.reshape(24, -1))
    assert flat_est.inverse_transform(flat_est.transform(X.reshape(24, -1))).shape == (24, 60)


def test_patch_mlp_mean_needs_a_deterministic_code_larger_than_the_channels():
    X = RNG.uniform(size=(24, 3, 6, 5))
    with pytest.raises(ValueError, match="n_components must exceed 3"):
        AutoEncoder(3, architecture=PatchMLP(hidden_layer_sizes=4), **FAST).fit(X)
    with pytest.raises(ValueError, match="use remove_mean=False"):
        VariationalAutoEncoder(4, architecture=PatchMLP(hidden_layer_sizes=4), **FAST).fit(X)


@pytest.mark.parametrize("length", [25, 8, 2])
def test_1d_convolutions_reconstruct_exactly_the_input_length(length):
    X = RNG.uniform(size=(4, length))
    est = AutoEncoder(2, architecture=Convolutional1D(channels=(2, 2, 2)), **FAST).fit(X)
    assert est.inverse_transform(est.transform(X)).shape == X.shape


def test_a_different_image_size_or_channel_count_is_a_clear_error():
    est = AutoEncoder(2, architecture=Convolutional2D(channels=(2,)), **FAST).fit(images())
    with pytest.raises(ValueError, match=r"shape \(1, 10, 10\).*fitted on samples of shape"):
        est.transform(images(size=(10, 10)))
    with pytest.raises(ValueError, match=r"shape \(3, 8, 8\).*fitted on samples of shape"):
        est.score_samples(RNG.uniform(size=(4, 3, 8, 8)))
    with pytest.raises(ValueError, match="flat image"):
        est.transform(images().reshape(24, -1))


def test_flat_images_need_their_shape_and_it_must_fit():
    flat = images().reshape(24, -1)
    with pytest.raises(ValueError, match=r"input_shape=\(h, w\)"):
        AutoEncoder(2, architecture=Convolutional2D(), **FAST).fit(flat)
    with pytest.raises(ValueError, match="holds 49 values"):
        AutoEncoder(2, architecture=Convolutional2D((7, 7)), **FAST).fit(flat)
    with pytest.raises(ValueError, match="input_shape must have 2 or 3 entries"):
        AutoEncoder(2, architecture=Convolutional2D((2, 2, 4, 4)), **FAST).fit(flat)


def test_flat_images_sit_after_a_scaler_in_a_pipeline():
    flat = 255 * images().reshape(24, -1)
    pipe = make_pipeline(
        MinMaxScaler(), AutoEncoder(2, architecture=Convolutional2D((8, 8), channels=(2,)), **FAST)
    )
    assert pipe.fit(flat).transform(flat).shape == (24, 2)
    assert pipe[-1].n_features_in_ == 64


def test_tags_say_which_ranks_an_estimator_reads():
    tags = get_tags(AutoEncoder())
    assert tags.input_tags.two_d_array and not tags.input_tags.three_d_array
    tags = get_tags(AutoEncoder(architecture=Convolutional2D()))
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    tags = get_tags(AutoEncoder(architecture=Convolutional2D((8, 8))))
    assert tags.input_tags.three_d_array and tags.input_tags.two_d_array
    assert get_tags(RecurrentAutoEncoder()).input_tags.three_d_array


def conv_autoencoder(**params):
    return AutoEncoder(3, architecture=Convolutional2D(channels=(4,)), **{**FAST, **params})


def test_same_seed_same_model_and_pickle_round_trip():
    X = images()
    a, b = conv_autoencoder().fit(X), conv_autoencoder().fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = conv_autoencoder(random_state=1).fit(X)
    assert not np.allclose(a.transform(X), c.transform(X))
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.score_samples(X), a.score_samples(X))


def test_clone_gives_an_unfitted_copy_with_its_own_architecture():
    est = conv_autoencoder().fit(images())
    copy = clone(est)
    assert not hasattr(copy, "net_")
    assert copy.architecture is not est.architecture
    assert copy.get_params()["architecture__channels"] == (4,)


def test_grid_search_tunes_an_architecture_parameter():
    X = images(n=30)
    search = GridSearchCV(
        conv_autoencoder(),
        {"architecture__channels": [(2,), (4, 4)], "architecture__kernel_size": [3, 5]},
        cv=2,
    ).fit(X)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.architecture_.channels in [(2,), (4, 4)]
    assert search.best_estimator_.architecture_.kernel_size in [3, 5]


def test_the_fitted_architecture_is_a_copy_that_set_params_does_not_change():
    est = conv_autoencoder()
    est.fit(images())
    est.set_params(architecture__channels=(8, 8))
    # The fitted network stays what it was until the next fit.
    assert est.architecture_.channels == (4,)
    assert est.transform(images()).shape == (24, 3)


def test_a_custom_module_is_trained_and_used():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 6))  # a plane in 6-D
    est = AutoEncoder(2, architecture=TinyLinearArchitecture(), **{**FAST, "max_iter": 30})
    est.set_params(learning_rate_init=1e-2).fit(X)
    assert isinstance(est.module_.net, TinyLinear)
    # Training lowered the error of the user's module.
    assert est.loss_curve_[-1] < 0.1 * est.loss_curve_[0]
    with torch.no_grad():
        mine = est.module_.net.encode(torch.tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(est.transform(X), mine, rtol=1e-5, atol=1e-6)


def test_an_architecture_that_is_not_one_is_rejected():
    with pytest.raises(ValueError, match="architecture"):
        AutoEncoder(architecture="cnn").fit(RNG.normal(size=(10, 3)))


class RecordingSequences(Architecture):
    """A recurrent network whose encoder records the batches it reads."""

    input_kind = "sequence"
    seen: list = []

    def build(self, input_shape, n_components, n_outputs):
        module = Recurrent(hidden_size=4).build(input_shape, n_components, n_outputs)
        original = module.encode

        def encode(x, lengths=None):
            if torch.is_grad_enabled():
                RecordingSequences.seen.append((x.detach().clone(), lengths))
            return original(x, lengths)

        module.encode = encode
        return module


def test_denoising_never_corrupts_padding():
    RecordingSequences.seen = []
    X = sequences(n=16, n_features=3)
    DenoisingAutoEncoder(
        2, architecture=RecordingSequences(), noise="gaussian", noise_level=1.0, **FAST
    ).fit(X)
    assert RecordingSequences.seen
    for x, lengths in RecordingSequences.seen:
        assert lengths is not None
        steps = torch.arange(x.shape[1])[None, :] >= lengths[:, None]
        # Padded steps reach the encoder as zeros; real steps are corrupted.
        assert torch.all(x[steps] == 0)
        assert torch.any(x[~steps] != 0)


@pytest.mark.parametrize("make", [AutoEncoder, VariationalAutoEncoder, DenoisingAutoEncoder])
def test_padding_never_reaches_a_score(make):
    # A short sequence scores the same alone and beside a long one, which pads it.
    X = sequences(n=12, n_features=2)
    est = make(2, architecture=Recurrent(hidden_size=8), **FAST).fit(X)
    short = min(X, key=len)
    alone = est.score_samples([short])[0]
    padded = est.score_samples([short, RNG.uniform(size=(30, 2))])[0]
    assert alone == pytest.approx(padded, rel=1e-5, abs=1e-6)


def test_vae_likelihood_sums_over_every_value_of_an_image():
    # A constant image scored by a fixed model: doubling the pixels doubles the
    # Gaussian normalisation term, so the bound scales with the image size.
    X = images(n=40)
    vae = VariationalAutoEncoder(
        2, architecture=Convolutional2D(channels=(2,)), beta=1.0, **FAST
    ).fit(X)
    per_pixel_constant = -0.5 * np.log(2 * np.pi)
    scores = vae.score_samples(X)
    # Each of the 64 pixels adds at most the peak of a unit-variance density
    # ~N(0, 1) at its start (log-variance starts at 0) minus its squared error.
    assert (scores < 64 * per_pixel_constant + 1e-3 + 5.0).all()
    assert vae.sample(2, random_state=0).shape == (2, 8, 8)


def test_feature_errors_of_an_image_model_are_per_pixel_maps():
    X = images()
    detector = AnomalyDetector(conv_autoencoder()).fit(X)
    errors = detector.feature_errors(X)
    assert errors.shape == X.shape
    np.testing.assert_allclose(
        -errors.reshape(len(X), -1).mean(axis=1), detector.score_samples(X), rtol=1e-4
    )


def test_warm_start_rejects_another_image_size():
    est = conv_autoencoder(warm_start=True).fit(images())
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(1, 8, 8\)"):
        est.fit(images(size=(9, 9)))
    assert est.input_shape_ == (1, 8, 8)


def test_recurrent_autoencoder_is_the_recurrent_architecture():
    X = RNG.uniform(size=(16, 6))
    a = RecurrentAutoEncoder(2, hidden_size=8, cell="gru", **FAST).fit(X)
    b = AutoEncoder(2, architecture=Recurrent(cell="gru", hidden_size=8), **FAST).fit(X)
    np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=1e-6)
    assert a.architecture_.get_params() == b.architecture_.get_params()


@pytest.mark.parametrize("make_X", [images, lambda: images().reshape(24, -1)], ids=["hw", "flat"])
def test_a_convolutional_model_loads_safely_with_only_skae_types_trusted(make_X):
    sio = pytest.importorskip("skops.io")
    X = make_X()
    shape = (8, 8) if X.ndim == 2 else None
    est = AutoEncoder(3, architecture=Convolutional2D(shape, channels=(4,)), **FAST).fit(X)
    data = sio.dumps(est)
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) == {"skae.autoencoder.AutoEncoder", "skae.architectures.Convolutional2D"}
    loaded = sio.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    assert loaded.inverse_transform(loaded.transform(X)).shape == X.shape


@pytest.mark.parametrize("make_X", [images, lambda: images().reshape(24, -1)], ids=["hw", "flat"])
@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score_samples"])
def test_a_convolutional_model_exports_to_onnx_in_its_input_form(make_X, method):
    ort = pytest.importorskip("onnxruntime")
    from skae import to_onnx

    X = make_X().astype(np.float32)
    shape = (8, 8) if X.ndim == 2 else None
    est = AutoEncoder(3, architecture=Convolutional2D(shape, channels=(4,)), **FAST).fit(X)
    session = ort.InferenceSession(to_onnx(est, method).SerializeToString())
    inputs = est.transform(X) if method == "inverse_transform" else X
    got = session.run(None, {"X": inputs[:7]})[0]
    expected = getattr(est, method)(inputs[:7])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------- the protocol as written
# One own architecture per input_kind, written from the Architecture docstring
# alone: the module sees (batch, *input_shape), encode gives (batch, n_outputs),
# decode gives the input's shape back.


class FlatNet(nn.Module):
    """Flattens any fixed-size sample; decodes back to its shape."""

    def __init__(self, input_shape, n_outputs, n_components):
        super().__init__()
        self.shape = tuple(input_shape)
        n = int(np.prod(self.shape))
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(n, 16), nn.Tanh(), nn.Linear(16, n_outputs)
        )
        self.decoder = nn.Sequential(nn.Linear(n_components, 16), nn.Tanh(), nn.Linear(16, n))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z).view(-1, *self.shape)


class OwnGrid(Architecture):
    def __init__(self, input_shape=None):
        self.input_shape = input_shape

    def build(self, input_shape, n_components, n_outputs):
        return FlatNet(input_shape, n_outputs, n_components)


class OwnTable(OwnGrid):
    input_kind = "table"


class OwnImage(OwnGrid):
    input_kind = "image"


class OwnSignal(OwnGrid):
    input_kind = "signal"


class GRUNet(nn.Module):
    def __init__(self, n_features, n_outputs, n_components):
        super().__init__()
        self.encoder = nn.GRU(n_features, 8, batch_first=True)
        self.to_code = nn.Linear(8, n_outputs)
        self.decoder = nn.GRU(n_components, 8, batch_first=True)
        self.to_output = nn.Linear(8, n_features)

    def encode(self, x, lengths=None):
        if lengths is not None:
            x = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
        return self.to_code(self.encoder(x)[1][-1])

    def decode(self, z, n_timesteps):
        return self.to_output(self.decoder(z[:, None].expand(-1, n_timesteps, -1))[0])


class OwnSequence(Architecture):
    input_kind = "sequence"

    def build(self, input_shape, n_components, n_outputs):
        return GRUNet(input_shape[-1], n_outputs, n_components)


OWN_CASES = {
    "table": (OwnTable(), lambda: RNG.uniform(size=(40, 6))),
    "image flat rows": (OwnImage(input_shape=(4, 5)), lambda: RNG.uniform(size=(40, 20))),
    "image 3-D": (OwnImage(), lambda: RNG.uniform(size=(40, 4, 5))),
    "signal 2-D": (OwnSignal(), lambda: RNG.uniform(size=(40, 9))),
    "signal flat rows": (OwnSignal(input_shape=(2, 5)), lambda: RNG.uniform(size=(40, 10))),
    "sequence list": (
        OwnSequence(),
        lambda: [RNG.uniform(size=(n, 2)) for n in RNG.randint(3, 9, size=40)],
    ),
}
OWN_OBJECTIVES = {
    "plain": lambda arch: AutoEncoder(3, architecture=arch, **FAST),
    "denoising": lambda arch: DenoisingAutoEncoder(3, architecture=arch, **FAST),
    "sparse": lambda arch: SparseAutoEncoder(3, architecture=arch, sparsity="topk", k=2, **FAST),
    "variational": lambda arch: VariationalAutoEncoder(3, architecture=arch, **FAST),
}


@pytest.mark.parametrize("objective", OWN_OBJECTIVES)
@pytest.mark.parametrize("case", OWN_CASES)
def test_an_own_architecture_of_every_input_kind_runs_every_objective(objective, case):
    arch, make_X = OWN_CASES[case]
    X = make_X()
    est = OWN_OBJECTIVES[objective](clone(arch)).fit(X)
    scores = est.score_samples(X)
    assert scores.shape == (len(X),) and np.isfinite(scores).all()
    assert est.transform(X).shape == (len(X), 3)
    errors = est.feature_errors(X)
    if isinstance(X, list):
        assert [e.shape for e in errors] == [x.shape for x in X]
        assert est.timestep_errors(X)[0].shape == (len(X[0]),)
    else:
        assert errors.shape == X.shape
        assert est.inverse_transform(est.transform(X)).shape == X.shape


def test_feature_errors_average_to_minus_the_score_on_every_reconstruction_family():
    X = RNG.uniform(size=(40, 5, 4))
    for make in (AutoEncoder, DenoisingAutoEncoder, SparseAutoEncoder):
        est = make(3, architecture=OwnImage(), **FAST).fit(X)
        errors = est.feature_errors(X)
        np.testing.assert_allclose(errors.mean(axis=(1, 2)), -est.score_samples(X), rtol=1e-6)


def test_timestep_errors_exist_on_every_sequence_model_and_only_there():
    X = RNG.uniform(size=(20, 7))
    assert hasattr(AutoEncoder(architecture=Recurrent()), "timestep_errors")
    assert hasattr(VariationalAutoEncoder(architecture=OwnSequence()), "timestep_errors")
    assert not hasattr(AutoEncoder(), "timestep_errors")
    ae = AutoEncoder(2, architecture=Recurrent(hidden_size=4), **FAST).fit(X)
    rec = RecurrentAutoEncoder(2, hidden_size=4, **FAST).fit(X)
    np.testing.assert_allclose(ae.timestep_errors(X), rec.timestep_errors(X), rtol=1e-6)
    np.testing.assert_allclose(ae.timestep_errors(X).mean(axis=1), -ae.score_samples(X))


def test_an_unknown_input_kind_is_a_clear_error():
    class Video(OwnGrid):
        input_kind = "video"

    with pytest.raises(ValueError, match=r"Video.input_kind is 'video'; expected one of"):
        AutoEncoder(2, architecture=Video(), **FAST).fit(RNG.uniform(size=(10, 4)))


class Returns(Architecture):
    """An architecture whose build returns whatever it is given (for the errors)."""

    def __init__(self, make=None):
        self.make = make

    def build(self, input_shape, n_components, n_outputs):
        return self.make(input_shape, n_outputs, n_components)


class BadDecode(FlatNet):
    def decode(self, z):
        return super().decode(z)[:, None]  # (batch, 1, n): broadcasts against x


class RaisingEncode(FlatNet):
    def encode(self, x):
        return self.encoder(x.T)


class NoParameters(nn.Module):
    def encode(self, x):
        return x

    def decode(self, z):
        return z


@pytest.mark.parametrize(
    "make, error, match",
    [
        (
            lambda *a: None,
            TypeError,
            r"Returns.build returned NoneType, expected a torch.nn.Module",
        ),
        (lambda *a: nn.Linear(2, 2), TypeError, r"without encode or decode"),
        (lambda *a: NoParameters(), ValueError, r"no trainable parameters"),
        (
            BadDecode,
            ValueError,
            r"decode returned shape \(2, 1, 6\) for a batch of shape \(2, 3\), expected \(2, 6\)",
        ),
        (RaisingEncode, ValueError, r"failed in encode on a batch of shape \(2, 6\): RuntimeError"),
    ],
)
def test_an_own_module_mistake_names_the_method_and_shapes(make, error, match):
    ae = AutoEncoder(3, architecture=Returns(make), **FAST)
    with pytest.raises(error, match=match):
        ae.fit(RNG.uniform(size=(10, 6)))
    assert not hasattr(ae, "net_") and not hasattr(ae, "architecture_")


def test_the_user_guide_snippets_on_own_architectures_run(tmp_path, monkeypatch):
    import re
    import textwrap
    from pathlib import Path

    page = Path(__file__).parents[1] / "docs" / "user_guide" / "architectures.rst"
    section = page.read_text().split("Writing your own")[1].split("Evidence\n")[0]
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", section)
    assert len(blocks) == 2  # the image module and the sequence module
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(textwrap.dedent(block), str(page), "exec"), {"__name__": "snippet"})


# ------------------------------------- the default network's parameters next to one

TABLE_FAMILIES = [AutoEncoder, DenoisingAutoEncoder, SparseAutoEncoder, VariationalAutoEncoder]


@pytest.mark.parametrize("family", TABLE_FAMILIES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"architecture": MLP((32,)), "hidden_layer_sizes": (128,)},
            r"hidden_layer_sizes=\(128,\) would be ignored.*architecture=MLP\(hidden_layer_sizes"
            r"=\(128,\)\) \(in a search, architecture__hidden_layer_sizes\)",
        ),
        (
            {"architecture": MLP((32,)), "activation": "tanh"},
            r"activation='tanh' would be ignored.*architecture=MLP\(activation='tanh', "
            r"hidden_layer_sizes=\(32,\)\)",
        ),
        (
            {"architecture": Convolutional1D(), "hidden_layer_sizes": (8,)},
            r"hidden_layer_sizes=\(8,\) would be ignored.*Convolutional1D has no "
            r"hidden_layer_sizes: its own parameters \(activation, channels",
        ),
    ],
    ids=["mlp-sizes", "mlp-activation", "conv-sizes"],
)
def test_the_default_networks_parameters_next_to_an_architecture_are_refused(family, params, match):
    est = family(2, **params, **FAST)
    clone(est)  # constructing, cloning and get_params accept it: fit decides
    assert est.get_params()["architecture"] is params["architecture"]
    for fit in (est.fit, est.partial_fit):
        with pytest.raises(ValueError, match=match):
            fit(RNG.uniform(size=(20, 6)))
        assert not hasattr(est, "net_") and not hasattr(est, "architecture_")


@pytest.mark.parametrize(
    "params",
    [
        {"architecture": MLP((32,))},  # the estimator's defaults: nothing set
        {"architecture": MLP((32,)), "hidden_layer_sizes": (32,)},  # the same network
        {"architecture": MLP((32,)), "hidden_layer_sizes": 32},  # an int width is a 1-tuple
        {"architecture": MLP(activation="tanh"), "activation": "tanh"},
        {"architecture": Convolutional1D(), "activation": "relu"},
        {"architecture": None, "hidden_layer_sizes": (8,), "activation": "tanh"},
    ],
    ids=["defaults", "same-sizes", "int-width", "same-activation", "conv-default", "no-arch"],
)
def test_the_default_networks_parameters_that_agree_pass(params):
    est = AutoEncoder(2, **params, **FAST).fit(RNG.uniform(size=(20, 6)))
    if params["architecture"] is None:
        assert est.architecture_.get_params() == {"hidden_layer_sizes": (8,), "activation": "tanh"}


def test_a_search_over_both_networks_takes_a_list_of_grids():
    X = RNG.uniform(size=(40, 16))
    grids = [
        {"hidden_layer_sizes": [(8,), (16,)]},
        {"architecture": [Convolutional1D(channels=(2,))], "architecture__kernel_size": [3, 5]},
    ]
    search = GridSearchCV(AutoEncoder(2, **FAST), grids, cv=2, error_score="raise").fit(X)
    assert len(search.cv_results_["params"]) == 4
    # One grid crossing both would pair the architecture with an ignored width.
    crossed = {"hidden_layer_sizes": [(8,)], "architecture": [Convolutional1D(channels=(2,))]}
    with pytest.raises(ValueError, match="hidden_layer_sizes=\\(8,\\) would be ignored"):
        GridSearchCV(AutoEncoder(2, **FAST), crossed, cv=2, error_score="raise").fit(X)


def test_recurrent_autoencoder_has_no_default_network_parameters_to_refuse():
    est = RecurrentAutoEncoder(2, hidden_size=4, **FAST)
    assert "hidden_layer_sizes" not in est.get_params()
    est.fit(RNG.uniform(size=(10, 5, 3)))


# ------------------------------------------------ time-pooled sequence codes


def pooled_model(**params):
    """A pooled model fitted on variable-length sequences, the same each call."""
    rng = np.random.RandomState(7)
    X = [rng.normal(size=(rng.randint(3, 12), 2)) for _ in range(24)]
    return AutoEncoder(3, architecture=PooledSequence(**{"hidden_size": 8, **params}), **FAST).fit(
        X
    ), X


def test_a_pooled_code_is_the_same_alone_and_padded_beside_a_longer_sequence():
    est, X = pooled_model(channels=(4, 4))
    short = min(X, key=len)
    alone = est.transform([short])[0]
    padded = est.transform([short, RNG.normal(size=(40, 2))])[0]
    np.testing.assert_allclose(alone, padded, rtol=1e-5, atol=1e-6)


def test_values_in_padded_steps_never_reach_a_pooled_code():
    module = PooledSequence(channels=(4, 4), hidden_size=4).build((None, 2), 3, 3)
    x = torch.randn(3, 10, 2)
    lengths = torch.tensor([4, 10, 7])
    padding = torch.arange(10)[None, :] >= lengths[:, None]
    noisy = x.clone()
    noisy[padding] = 100.0  # large positive values win a max and move a mean
    with torch.no_grad():
        torch.testing.assert_close(module.encode(noisy, lengths), module.encode(x, lengths))
        # Each code is its sequence's code alone, unpadded.
        for i, n in enumerate(lengths.tolist()):
            alone = module.encode(x[i : i + 1, :n], None)
            torch.testing.assert_close(module.encode(x, lengths)[i : i + 1], alone)


def framed(x, before, after):
    """``x`` with ``before`` zero steps in front and ``after`` behind."""
    n_features = x.shape[1]
    return np.vstack([np.zeros((before, n_features)), x, np.zeros((after, n_features))])


@pytest.mark.parametrize(
    "channels, kernel_size", [((4, 4), 3), ((4,), 5), ((4, 4, 4), 3)], ids=["2x3", "1x5", "3x3"]
)
def test_a_pooled_code_is_unchanged_by_a_shift_inside_zero_steps(channels, kernel_size):
    # The documented margin: len(channels) * (kernel_size - 1) zero steps on each side.
    est, X = pooled_model(channels=channels, kernel_size=kernel_size)
    margin = len(channels) * (kernel_size - 1)
    x = X[0]
    codes = est.transform([framed(x, margin + shift, margin + 5 - shift) for shift in range(6)])
    np.testing.assert_allclose(codes, np.repeat(codes[:1], 6, axis=0), rtol=1e-5, atol=1e-6)
    # Without the margin the steps near an end see x, and the code moves.
    edge = est.transform([framed(x, 0, 2 * margin + 5), framed(x, 2 * margin + 5, 0)])
    assert np.abs(edge[0] - edge[1]).max() > 1e-4


def test_kernel_size_one_gives_the_same_pooled_code_to_any_order_of_steps():
    est, X = pooled_model(channels=(4, 4), kernel_size=1)
    x = max(X, key=len)
    orders = [x, x[::-1], x[np.random.RandomState(1).permutation(len(x))]]
    codes = est.transform(orders)
    np.testing.assert_allclose(codes, np.repeat(codes[:1], 3, axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "max", ("max", "mean")])
def test_each_pooling_trains_and_changes_the_code(pooling):
    est, X = pooled_model(channels=(4,), pooling=pooling)
    module = est.module_.net
    assert module.to_code.in_features == 4 * (1 if isinstance(pooling, str) else 2)
    assert np.isfinite(est.transform(X)).all()


def test_a_pooled_model_pickles_and_reproduces_with_one_seed():
    est, X = pooled_model(channels=(4,))
    again, _ = pooled_model(channels=(4,))
    np.testing.assert_array_equal(est.transform(X), again.transform(X))
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"kernel_size": 4}, ValueError, "kernel_size must be odd.*got 4"),
        ({"kernel_size": 0}, ValueError, "'kernel_size' parameter"),
        ({"pooling": "median"}, ValueError, "'pooling' parameter"),
        ({"pooling": ("mean", "median")}, ValueError, "pooling must be one of.*'median'"),
        ({"pooling": ("max", "max")}, ValueError, "distinct"),
        ({"pooling": ()}, ValueError, "pooling must be one of"),
        ({"channels": (4, 0)}, ValueError, "channels must be a positive int"),
        ({"cell": "rnn"}, ValueError, "'cell' parameter"),
        ({"hidden_size": 0}, ValueError, "'hidden_size' parameter"),
        ({"activation": "gelu"}, ValueError, "'activation' parameter"),
    ],
)
def test_pooled_sequence_parameters_are_checked_by_name(params, error, match):
    X = sequences(n=8)
    with pytest.raises(error, match=match):
        AutoEncoder(2, architecture=PooledSequence(**params), **FAST).fit(X)


def test_no_convolution_pools_the_input_features_themselves():
    module = PooledSequence(channels=(), pooling="mean", hidden_size=4).build((None, 2), 3, 3)
    x = torch.randn(2, 6, 2)
    lengths = torch.tensor([3, 6])
    with torch.no_grad():
        expected = module.to_code(torch.stack([x[0, :3].mean(0), x[1].mean(0)]))
        torch.testing.assert_close(module.encode(x, lengths), expected)
