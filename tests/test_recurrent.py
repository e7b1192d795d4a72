"""The RecurrentAutoEncoder family (skae.recurrent): input forms, padding, anomaly scores,
errors."""

import numpy as np
import pytest
import torch
from _settings import FAST_RNN

from skae import RecurrentAutoEncoder

SMALL = {**FAST_RNN, "n_components": 3, "hidden_size": 8, "max_iter": 5, "tol": None}


@pytest.fixture
def rng():
    return np.random.RandomState(0)


def sines(rng, n, n_timesteps, n_features=1):
    """Sine waves with random phases and frequencies, shape (n, n_timesteps, n_features)."""
    t = np.linspace(0, 2 * np.pi, n_timesteps)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, n_features))
    freq = rng.uniform(1.0, 2.0, size=(n, 1, n_features))
    return np.sin(freq * t[None, :, None] + phase)


def as_form(X3, form):
    if form == "table":
        return X3[:, :, 0]
    if form == "list":
        return list(X3)
    return X3


@pytest.mark.parametrize("form", ["table", "array", "list"])
def test_round_trip_matches_scores_in_each_input_form(rng, form):
    n_features = 1 if form == "table" else 2
    X = as_form(sines(rng, 24, 10, n_features), form)
    rae = RecurrentAutoEncoder(**SMALL).fit(X)
    Z = rae.transform(X)
    X_back = rae.inverse_transform(Z)
    errors = rae.timestep_errors(X)

    assert Z.shape == (24, 3)
    assert type(X_back) is type(X)
    assert np.shape(X_back) == np.shape(X)
    assert np.shape(errors) == (24, 10)
    # Decoding the codes reproduces exactly what the scores measure.
    sq = (np.asarray(X_back) - np.asarray(X)) ** 2
    per_step = sq if form == "table" else sq.mean(axis=2)
    np.testing.assert_allclose(np.asarray(errors), per_step, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(rae.score_samples(X), -per_step.mean(axis=1), rtol=1e-4)


def test_ragged_list_round_trip_keeps_each_length(rng):
    lengths = [4, 11, 7, 1, 9]
    X = [rng.normal(size=(n, 2)) for n in lengths]
    rae = RecurrentAutoEncoder(**SMALL).fit(X)
    X_back = rae.inverse_transform(rae.transform(X), n_timesteps=lengths)
    errors = rae.timestep_errors(X)

    assert rae.n_timesteps_in_ is None
    assert [len(x) for x in X_back] == lengths
    assert [len(e) for e in errors] == lengths
    expected = [-((xb - x) ** 2).mean() for xb, x in zip(X_back, X, strict=True)]
    np.testing.assert_allclose(rae.score_samples(X), expected, rtol=1e-4)


def test_equal_length_list_gives_same_model_and_codes_as_3d_array(rng):
    X = sines(rng, 20, 12, 2)
    from_array = RecurrentAutoEncoder(**SMALL).fit(X)
    from_list = RecurrentAutoEncoder(**SMALL).fit(list(X))

    assert from_list.n_timesteps_in_ == 12
    np.testing.assert_array_equal(from_array.transform(X), from_list.transform(list(X)))
    np.testing.assert_array_equal(from_array.transform(X), from_array.transform(list(X)))
    np.testing.assert_array_equal(from_list.loss_curve_, from_array.loss_curve_)


def test_2d_input_is_the_same_as_univariate_3d_input(rng):
    X = sines(rng, 20, 12)
    from_table = RecurrentAutoEncoder(**SMALL).fit(X[:, :, 0])
    from_array = RecurrentAutoEncoder(**SMALL).fit(X)

    assert from_table.n_features_in_ == 12
    assert from_array.n_features_in_ == 1
    np.testing.assert_array_equal(from_table.transform(X[:, :, 0]), from_array.transform(X))


def test_sequence_scores_the_same_alone_as_beside_much_longer_ones(rng):
    X = [rng.normal(size=(n, 2)) for n in (6, 15, 9, 40)]
    rae = RecurrentAutoEncoder(**SMALL).fit(X)
    short = X[0]
    longer = [short] + [rng.normal(size=(n, 2)) * 10 for n in (50, 80)]

    np.testing.assert_allclose(rae.score_samples([short]), rae.score_samples(longer)[:1], rtol=1e-5)
    np.testing.assert_allclose(rae.transform([short]), rae.transform(longer)[:1], rtol=1e-5)
    np.testing.assert_allclose(
        rae.timestep_errors([short])[0], rae.timestep_errors(longer)[0], rtol=1e-5
    )


def test_padding_never_enters_the_training_loss(rng):
    lengths = torch.tensor([3, 8, 5])
    rae = RecurrentAutoEncoder(**SMALL).fit([rng.normal(size=(n, 2)) for n in lengths])
    module = rae.module_
    seqs = [torch.randn(int(n), 2) for n in lengths]
    padded = torch.zeros(3, 12, 2)
    garbage = torch.full((3, 12, 2), 1e3)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
        garbage[i, : len(s)] = s

    with torch.no_grad():
        loss = rae._loss(module, (padded, lengths), True)
        loss_garbage = rae._loss(module, (garbage, lengths), True)
        # The batch loss is the mean over real steps: each sequence alone,
        # weighted by its length.
        alone = [rae._loss(module, s[None], True) * len(s) for s in seqs]
    assert loss == pytest.approx(loss_garbage.item(), rel=1e-6)
    assert loss.item() == pytest.approx((sum(alone) / lengths.sum()).item(), rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spiky_sine_waves_score_lower_and_error_peaks_at_the_spike(seed):
    rng = np.random.RandomState(seed)
    t = np.linspace(0, 2 * np.pi, 24)

    def waves(n):
        return np.sin(1.5 * t + rng.uniform(0, 2 * np.pi, size=(n, 1)))

    X_train, X_clean, X_spiky = waves(128), waves(30), waves(30)
    where = rng.randint(3, len(t) - 3, size=30)
    X_spiky[np.arange(30), where] += rng.choice([-2.5, 2.5], size=30)

    rae = RecurrentAutoEncoder(
        n_components=4,
        hidden_size=16,
        batch_size=32,
        learning_rate_init=1e-2,
        max_iter=40,
        tol=None,
        random_state=seed,
        device="cpu",
    ).fit(X_train)
    clean, spiky = rae.score_samples(X_clean), rae.score_samples(X_spiky)

    # Seeds 0-3 give clean scores above -0.03 and spiky ones below -0.2.
    assert spiky.max() < 3 * clean.min()
    peaks = rae.timestep_errors(X_spiky).argmax(axis=1)
    assert np.mean(peaks == where) >= 0.9


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_architecture_learns_sine_waves(cell, bidirectional):
    rng = np.random.RandomState(0)
    t = np.linspace(0, 2 * np.pi, 16)
    X = np.sin(1.5 * t + rng.uniform(0, 2 * np.pi, size=(64, 1)))
    rae = RecurrentAutoEncoder(
        n_components=3,
        cell=cell,
        hidden_size=16,
        num_layers=2,
        bidirectional=bidirectional,
        batch_size=16,
        learning_rate_init=1e-2,
        max_iter=40,
        tol=None,
        random_state=0,
        device="cpu",
    ).fit(X)
    # Predicting zeros costs the waves' variance, 0.5. Seen with gradient clipping
    # (the default for sequences): 0.0014 to 0.0173 over the four networks.
    assert -rae.score(X) < 0.05


def test_ragged_list_with_mismatched_feature_counts_raises(rng):
    X = [rng.normal(size=(5, 3)), rng.normal(size=(4, 2))]
    with pytest.raises(ValueError, match=r"X\[1\] has 2 features per time step, but X\[0\] has 3"):
        RecurrentAutoEncoder(**SMALL).fit(X)


def test_empty_sequence_raises(rng):
    X = [rng.normal(size=(5, 2)), np.empty((0, 2))]
    with pytest.raises(ValueError, match=r"X\[1\] is an empty sequence"):
        RecurrentAutoEncoder(**SMALL).fit(X)
    with pytest.raises(ValueError, match="empty list"):
        RecurrentAutoEncoder(**SMALL).fit([])


@pytest.mark.parametrize("form", ["table", "array", "list"])
def test_nan_raises_and_leaves_estimator_unfitted(rng, form):
    X = sines(rng, 6, 8, 1 if form == "table" else 2)
    X[2, 3, 0] = np.nan
    rae = RecurrentAutoEncoder(**SMALL)
    with pytest.raises(ValueError, match="contains NaN"):
        rae.fit(as_form(X, form))
    assert not hasattr(rae, "net_")
    assert not hasattr(rae, "n_features_in_")


def test_list_element_that_is_not_2d_raises(rng):
    with pytest.raises(ValueError, match=r"X\[1\] has shape \(4,\)"):
        RecurrentAutoEncoder(**SMALL).fit([rng.normal(size=(5, 1)), rng.normal(size=4)])


def test_inputs_must_match_the_fitted_features_per_step(rng):
    rae = RecurrentAutoEncoder(**SMALL).fit(sines(rng, 8, 6, 3))
    with pytest.raises(ValueError, match="2 features per time step, but .* with 3"):
        rae.transform(sines(rng, 8, 6, 2))
    with pytest.raises(ValueError, match="reads as univariate sequences"):
        rae.score_samples(sines(rng, 8, 6)[:, :, 0])


def test_inverse_transform_needs_n_timesteps_after_variable_length_fit(rng):
    rae = RecurrentAutoEncoder(**SMALL).fit([rng.normal(size=(n, 1)) for n in (3, 5)])
    Z = rae.transform([rng.normal(size=(4, 1))])
    with pytest.raises(ValueError, match="pass n_timesteps"):
        rae.inverse_transform(Z)
    with pytest.raises(ValueError, match="n_timesteps must be a positive int"):
        rae.inverse_transform(Z, n_timesteps=0)
    assert rae.inverse_transform(Z, n_timesteps=6)[0].shape == (6, 1)


def test_sequence_networks_clip_gradients_and_tables_do_not(rng):
    from skae import AutoEncoder

    rae = RecurrentAutoEncoder(**SMALL).fit(sines(rng, 16, 8))
    clipping = dict(rae.net_.callbacks_)["gradient_clipping"]
    assert clipping.gradient_clip_value == 1.0
    ae = AutoEncoder(2, max_iter=1, random_state=0, device="cpu").fit(rng.normal(size=(20, 4)))
    assert "gradient_clipping" not in dict(ae.net_.callbacks_)


def test_default_batches_give_a_small_sequence_set_several_steps_an_epoch(rng):
    rae = RecurrentAutoEncoder(**{**SMALL, "batch_size": "auto", "max_iter": 1})
    rae.fit(sines(rng, 200, 6))
    assert rae.net_.batch_size == 12  # 200 // 16: 17 steps an epoch, not 1


def test_step_clock_tells_steps_apart_and_ignores_what_follows():
    from skae._modules import step_clock

    like = torch.zeros(1, dtype=torch.float64)
    clock = step_clock(2048, 10, like)
    assert clock.shape == (2048, 20)
    # Every step of a 2,048-step sequence has its own values ...
    assert len(np.unique(np.round(clock.numpy(), 6), axis=0)) == 2048
    # ... which depend on its index only, not on the length of the sequence.
    torch.testing.assert_close(step_clock(7, 10, like), clock[:7])
    assert step_clock(5, 0, like).shape == (5, 0)


def test_decoder_reads_the_code_and_the_clock_by_default():
    from skae.architectures import Recurrent

    module = Recurrent(hidden_size=4).build((None, 3), 2, 2)
    assert module.decoder.input_size == 2 + 2 * 10
    assert Recurrent(hidden_size=4, time_encoding=0).build((None, 3), 2, 2).decoder.input_size == 2
    with pytest.raises(ValueError, match="time_encoding"):
        RecurrentAutoEncoder(time_encoding=-1).fit(np.zeros((4, 5)))


@pytest.mark.parametrize("time_encoding", [10, 0])
def test_a_shape_that_changes_along_the_sequence_needs_the_clock(time_encoding):
    # Every row is one chirp at a random amplitude: the code needs 1 value, but
    # the decoder has to make a waveform whose frequency changes along the steps.
    rng = np.random.RandomState(0)
    t = np.linspace(0, 1, 40)
    X = rng.uniform(0.5, 1.5, size=(32, 1)) * np.sin(2 * np.pi * 3 * t**2)
    X += 0.05 * rng.normal(size=X.shape)
    rae = RecurrentAutoEncoder(
        n_components=2,
        hidden_size=16,
        time_encoding=time_encoding,
        max_iter=30,
        tol=None,
        random_state=0,
        device="cpu",
    ).fit(X)
    # Predicting zeros costs 0.54. Seen on seeds 0-2: 0.047 to 0.078 with the
    # clock, 0.50 to 0.53 without (the plain repeat-vector decoder is stuck).
    error = -rae.score(X)
    if time_encoding:
        assert error < 0.15
    else:
        assert error > 0.3
