"""The DenoisingAutoEncoder family (skae.denoising): corruption in training only, its
statistics, denoising."""

import _settings
import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skae import AutoEncoder, DenoisingAutoEncoder

# Every fit here sets its own max_iter and random_state.
FAST = {**_settings.FAST, "hidden_layer_sizes": (16,), "batch_size": 100, "tol": None}


class RecordTrainingInputs(Callback):
    """Record each training batch and the input the module actually received."""

    def initialize(self):
        self.clean, self.fed = [], []
        return self

    def on_train_begin(self, net, **kwargs):
        # The architecture's encoder: what the network actually reads.
        self.handle_ = net.module_.net.encoder.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        if module.training:  # inference is recorded by no test
            self.fed.append(args[0].detach().clone())

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.clean.append(batch.clone())

    def on_train_end(self, net, **kwargs):
        self.handle_.remove()


def fit_recording(X, **params):
    recorder = RecordTrainingInputs()
    model = DenoisingAutoEncoder(callbacks=[recorder], **{**FAST, **params}).fit(X)
    clean, fed = torch.cat(recorder.clean).numpy(), torch.cat(recorder.fed).numpy()
    assert clean.shape == fed.shape
    return model, clean, fed


@pytest.fixture
def X_positive():
    # No zeros and a unique min/max per feature, so corrupted entries are recognisable.
    return np.random.RandomState(0).uniform(1.0, 2.0, size=(400, 20))


def test_inference_never_corrupts(X_positive):
    model, clean, fed = fit_recording(
        X_positive, n_components=4, noise="masking", noise_level=0.5, max_iter=2, random_state=0
    )
    codes = model.transform(X_positive)
    np.testing.assert_array_equal(codes, model.transform(X_positive))
    module = model.module_
    with torch.no_grad():
        codes_clean = module.encode(torch.tensor(X_positive, dtype=torch.float32)).numpy()
        codes_fed = module.encode(torch.tensor(fed)).numpy()
        codes_of_clean_batches = module.encode(torch.tensor(clean)).numpy()
    np.testing.assert_allclose(codes, codes_clean, rtol=1e-5, atol=1e-6)
    # The corrupted training input encodes differently from the same rows clean.
    assert np.abs(codes_fed - codes_of_clean_batches).mean() > 0.05
    recon = model.inverse_transform(codes)
    np.testing.assert_allclose(
        model.score_samples(X_positive), -((recon - X_positive) ** 2).mean(1), rtol=1e-4
    )
    np.testing.assert_array_equal(model.denoise(X_positive), recon)


@pytest.mark.parametrize("noise", ["masking", "salt_pepper"])
@pytest.mark.parametrize("noise_level", [0.1, 0.4])
def test_noise_corrupts_expected_fraction_of_entries(X_positive, noise, noise_level):
    _, clean, fed = fit_recording(
        X_positive, noise=noise, noise_level=noise_level, max_iter=3, random_state=1
    )
    changed = clean != fed
    # 24000 Bernoulli draws: the fraction's std is below 0.004.
    assert abs(changed.mean() - noise_level) < 0.02
    if noise == "masking":
        np.testing.assert_array_equal(fed[changed], 0.0)
    else:
        lo = X_positive.min(axis=0).astype(np.float32)
        hi = X_positive.max(axis=0).astype(np.float32)
        is_lo, is_hi = fed == lo, fed == hi
        assert np.all((is_lo | is_hi)[changed])
        assert abs(is_hi[changed].mean() - 0.5) < 0.05


@pytest.mark.parametrize("noise_level", [0.1, 0.5])
def test_gaussian_noise_has_requested_std(X_positive, noise_level):
    _, clean, fed = fit_recording(X_positive, noise_level=noise_level, max_iter=2, random_state=2)
    diff = fed - clean
    assert abs(diff.std() / noise_level - 1) < 0.03
    assert abs(diff.mean()) < 0.03 * noise_level


def test_corruption_is_fresh_every_batch_and_seeded():
    # Identical rows: corruption drawn once and reused would give identical batches.
    X = np.tile(np.linspace(1.0, 2.0, 10), (200, 1))
    params = dict(noise="masking", noise_level=0.3, max_iter=2)
    _, _, fed = fit_recording(X, random_state=0, **params)
    _, _, fed_again = fit_recording(X, random_state=0, **params)
    _, _, fed_other = fit_recording(X, random_state=1, **params)
    np.testing.assert_array_equal(fed, fed_again)
    assert (fed != fed_other).mean() > 0.2
    batches = fed.reshape(-1, 100, 10)
    assert all((batches[0] != b).mean() > 0.2 for b in batches[1:])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_denoises_better_than_autoencoder(seed):
    rng = np.random.RandomState(seed)
    mixing = rng.normal(size=(2, 20))

    def sample(n):  # a 2-D curved manifold in 20-D
        return np.tanh(rng.uniform(-2, 2, size=(n, 2)) @ mixing)

    X_train, X_test = sample(1000), sample(300)
    X_noisy = X_test + 0.3 * rng.normal(size=X_test.shape)
    # Wide enough code that a plain autoencoder passes much of the noise through.
    params = dict(
        n_components=16,
        hidden_layer_sizes=(64,),
        batch_size=50,
        learning_rate_init=3e-3,
        max_iter=40,
        tol=None,
    )
    ae = AutoEncoder(random_state=seed, device="cpu", **params).fit(X_train)
    dae = DenoisingAutoEncoder(noise_level=0.3, random_state=seed, device="cpu", **params)
    dae.fit(X_train)
    err_ae = ((ae.inverse_transform(ae.transform(X_noisy)) - X_test) ** 2).mean()
    err_dae = ((dae.denoise(X_noisy) - X_test) ** 2).mean()
    # Measured ratios: 0.64 (seed 0), 0.64 (seed 1).
    assert err_dae < 0.8 * err_ae


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(noise_level=-1), "noise_level"),
        (dict(noise="unknown"), "noise"),
        (dict(noise="masking", noise_level=1.5), "noise_level=1.5 is a probability"),
        (dict(noise="salt_pepper", noise_level=2), "expected a value in \\[0, 1\\]"),
    ],
)
def test_invalid_parameters_raise_at_fit(X_positive, params, match):
    model = DenoisingAutoEncoder(**params, max_iter=1)
    with pytest.raises(ValueError, match=match):
        model.fit(X_positive)
    assert not hasattr(model, "net_")
    assert not hasattr(model, "data_min_")


# ------------------------------------------------------- whole larger images


@pytest.fixture(scope="module")
def patch_model():
    """A convolutional denoiser of 6x8 patches (not square: rows and columns differ)."""
    from skae.architectures import Convolutional2D

    rng = np.random.RandomState(0)
    patches = rng.uniform(size=(64, 6, 8))
    params = {k: v for k, v in FAST.items() if k != "hidden_layer_sizes"}  # the MLP's
    return DenoisingAutoEncoder(
        6, architecture=Convolutional2D(channels=(4,)), noise_level=0.1, **params
    ).fit(patches)


def test_denoise_larger_image_shape_and_dtype(patch_model):
    images = np.random.RandomState(1).uniform(size=(2, 17, 23)).astype(np.float32)
    out = patch_model.denoise(images)
    assert out.shape == (2, 17, 23) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert patch_model.denoise(images[:, None], stride=1).shape == (2, 1, 17, 23)


def _tiles_by_hand(patch_model, image, weight):
    """Weighted mean of the stride-6 windows of a 12x16 image, computed window by window."""
    # stride = window height on a 12x16 image: two rows of tiles, and columns
    # at 0, 6 and the flush 8, so columns 6-13 are covered twice.
    tiles = np.array([image[i : i + 6, j : j + 8] for i in (0, 6) for j in (0, 6, 8)])
    rec = patch_model.denoise(tiles).reshape(2, 3, 6, 8)  # the training-size path
    total = np.zeros((12, 16))
    weight_sum = np.zeros((12, 16))
    for a, i in enumerate((0, 6)):
        for b, j in enumerate((0, 6, 8)):
            total[i : i + 6, j : j + 8] += weight * rec[a, b]
            weight_sum[i : i + 6, j : j + 8] += weight
    return total / weight_sum


def test_denoise_tiles_equal_patchwise_denoising(patch_model):
    image = np.random.RandomState(2).uniform(size=(12, 16))
    out = patch_model.denoise(image[None], stride=6, weights="uniform")[0]
    expected = _tiles_by_hand(patch_model, image, np.ones((6, 8)))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_denoise_weights_each_window_pixel(patch_model):
    image = np.random.RandomState(5).uniform(size=(12, 16))
    weight = np.random.RandomState(6).uniform(0.1, 2.0, size=(6, 8))
    out = patch_model.denoise(image[None], stride=6, weights=weight)[0]
    np.testing.assert_allclose(
        out, _tiles_by_hand(patch_model, image, weight), rtol=1e-5, atol=1e-6
    )
    uniform = patch_model.denoise(image[None], stride=6, weights="uniform")[0]
    # Only where two windows overlap (columns 6-13) do the weights matter.
    alone = np.r_[0:6, 14:16]
    np.testing.assert_allclose(out[:, alone], uniform[:, alone], rtol=1e-5, atol=1e-6)
    assert np.abs(out[:, 6:14] - uniform[:, 6:14]).min() > 1e-6


def test_denoise_gaussian_weights_by_default(patch_model):
    # A Gaussian bump centred on the 6x8 window, standard deviation a quarter
    # of each side: 1.5 rows and 2 columns.
    bump = np.outer(
        np.exp(-0.5 * ((np.arange(6) - 2.5) / 1.5) ** 2),
        np.exp(-0.5 * ((np.arange(8) - 3.5) / 2.0) ** 2),
    )
    image = np.random.RandomState(7).uniform(size=(1, 12, 16))
    out = patch_model.denoise(image, stride=6)
    np.testing.assert_allclose(out, patch_model.denoise(image, stride=6, weights="gaussian"))
    expected = _tiles_by_hand(patch_model, image[0], bump)
    np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-6)
    image = np.random.RandomState(8).uniform(size=(1, 17, 23))
    np.testing.assert_allclose(
        patch_model.denoise(image, stride=2),
        patch_model.denoise(image, stride=2, weights=2.5 * bump),  # only the ratios count
        rtol=1e-5,
        atol=1e-6,
    )


def test_denoise_image_of_training_size_is_the_patch_path(patch_model):
    image = np.random.RandomState(3).uniform(size=(3, 6, 8))
    np.testing.assert_allclose(
        patch_model.denoise(image, stride=1),
        patch_model.inverse_transform(patch_model.transform(image)),
        rtol=1e-6,
    )


def test_denoise_constant_image_has_constant_interior(patch_model):
    # Every window of a constant image is the same, so each pixel covered by
    # all 6x8 window offsets (stride 1) is the mean of one reconstruction,
    # weighted by the window's weights.
    window = patch_model.denoise(np.full((1, 6, 8), 0.5))[0]
    weight = np.random.RandomState(9).uniform(0.1, 2.0, size=(6, 8))
    for weights, expected in [
        ("uniform", window.mean()),
        (weight, np.average(window, weights=weight)),
    ]:
        out = patch_model.denoise(np.full((1, 20, 24), 0.5), stride=1, weights=weights)[0]
        interior = out[5:-5, 7:-7]
        assert np.ptp(interior) < 1e-6
        assert interior[0, 0] == pytest.approx(expected, abs=1e-6)


def test_denoise_larger_images_in_bounded_batches(patch_model, monkeypatch):
    from skae import _inference

    image = np.random.RandomState(4).uniform(size=(1, 30, 41))
    reference = patch_model.denoise(image, stride=1)
    sizes = []
    original = patch_model._reconstruct

    def recording(module, X, lengths=None):
        sizes.append(len(X))
        return original(module, X, lengths)

    monkeypatch.setattr(_inference, "INFERENCE_BATCH_ROWS_ND", 7)
    monkeypatch.setattr(patch_model, "_reconstruct", recording)
    out = patch_model.denoise(image, stride=1)
    assert max(sizes) <= 7 and sum(sizes) == 25 * 34  # every window, 7 at most a call
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "images, stride, match",
    [
        (np.zeros((1, 5, 30)), None, "H >= 6 and W >= 8"),
        (np.zeros((1, 2, 10, 10)), None, "fitted on 1-channel 6x8"),
        (np.zeros((1, 10, 10)), 0, "stride must be an int from 1 to 6"),
        (np.zeros((1, 10, 10)), 7, "stride must be an int from 1 to 6"),
        (np.zeros((1, 10, 10)), 2.5, "stride must be"),
        (np.full((1, 10, 10), np.nan), None, "NaN"),
    ],
)
def test_denoise_larger_images_errors(patch_model, images, stride, match):
    with pytest.raises(ValueError, match=match):
        patch_model.denoise(images, stride=stride)


@pytest.mark.parametrize(
    "weights, match",
    [
        ("hann", 'weights must be "gaussian", "uniform" or an array of shape \\(6, 8\\)'),
        (np.ones((8, 6)), "an array of shape \\(6, 8\\)"),
        (np.ones(48), "an array of shape"),
        (np.zeros((6, 8)), "finite and positive"),
        (np.full((6, 8), np.nan), "finite and positive"),
        (-np.ones((6, 8)), "finite and positive"),
    ],
)
def test_denoise_weights_errors(patch_model, weights, match):
    with pytest.raises(ValueError, match=match):
        patch_model.denoise(np.zeros((1, 10, 10)), weights=weights)
    with pytest.raises(ValueError, match=match):  # checked on training-size samples too
        patch_model.denoise(np.zeros((1, 6, 8)), weights=weights)
