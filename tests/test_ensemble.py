"""AutoEncoderEnsemble: subsamples, code sizes, scores, explanations, validation."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from skae import AutoEncoderEnsemble, ChunkedData
from skae import ensemble as ensemble_module


def ensemble(**kw):
    params = dict(n_estimators=6, max_iter=40, random_state=0, device="cpu")
    return AutoEncoderEnsemble(**{**params, **kw})


def blob_with_outliers(seed, n_samples=400, n_features=6, n_outliers=12):
    """Correlated inliers (rank 2 plus noise) and far, uncorrelated outliers at the end."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, 2)) @ rng.normal(size=(2, n_features))
    X += 0.1 * rng.normal(size=X.shape)
    outliers = rng.uniform(-6, 6, size=(n_outliers, n_features))
    return np.vstack([X, outliers])


@pytest.mark.parametrize(
    "max_samples, n_rows", [("auto", 256), (100, 100), (0.5, 206), (10_000, 412)]
)
def test_max_samples_sets_each_members_subsample(max_samples, n_rows):
    X = blob_with_outliers(0)
    fitted = ensemble(max_samples=max_samples).fit(X)
    assert fitted.estimators_samples_.shape == (6, n_rows)
    for rows in fitted.estimators_samples_:
        assert len(np.unique(rows)) == n_rows  # drawn without replacement
    # Members see different subsamples.
    assert not np.array_equal(*fitted.estimators_samples_[:2])


@pytest.mark.parametrize("max_components, largest", [("auto", 3), (2, 2), (50, 6)])
def test_code_sizes_are_drawn_up_to_max_components(max_components, largest):
    fitted = ensemble(n_estimators=40, max_components=max_components).fit(blob_with_outliers(1))
    assert fitted.code_sizes_.min() >= 1
    assert fitted.code_sizes_.max() == largest
    assert fitted.coefs_[1].shape == (40, 16, largest)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("code_density", [False, True])
def test_planted_outliers_score_below_every_inlier_median(seed, code_density):
    X = blob_with_outliers(seed)
    scores = ensemble(code_density=code_density).fit(X).score_samples(X)
    inliers, outliers = scores[:-12], scores[-12:]
    assert np.sum(outliers < np.percentile(inliers, 5)) >= 10
    assert np.median(outliers) < np.percentile(inliers, 1)


def test_feature_errors_split_the_reconstruction_score():
    X = blob_with_outliers(3)
    # With the reconstruction error as the only term of the score.
    fitted = ensemble(neighbor_samples=0, error_weight=1.0).fit(X)
    total = fitted.score_samples(X) + fitted.feature_errors(X).mean(axis=1)
    np.testing.assert_allclose(total, total[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scaling", ["robust", "none", "mixed"])
def test_scores_do_not_depend_on_a_common_unit_or_shift(scaling):
    X = blob_with_outliers(4)
    a = ensemble(neighbor_scaling=scaling).fit(X).score_samples(X)
    b = ensemble(neighbor_scaling=scaling).fit(1e3 * X - 7).score_samples(1e3 * X - 7)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


def test_only_robust_neighbour_scaling_ignores_each_features_own_unit():
    X = blob_with_outliers(4)
    scaled = X * np.array([1e3, 1e-2, 1, 5, 1e4, 0.1]) + 7
    standard = StandardScaler().fit_transform(X)
    robust = [ensemble(neighbor_scaling="robust").fit(Z).score_samples(Z) for Z in (X, scaled)]
    np.testing.assert_allclose(robust[0], robust[1], rtol=1e-3, atol=1e-3)
    for scaling in ("none", "mixed"):
        a, b = (ensemble(neighbor_scaling=scaling).fit(Z).score_samples(Z) for Z in (X, scaled))
        assert np.abs(a - b).max() > 0.1
    # Nor does standardising the features first change the robust scores.
    c = ensemble(neighbor_scaling="robust").fit(standard).score_samples(standard)
    np.testing.assert_allclose(robust[0], c, rtol=1e-3, atol=1e-3)


def test_trimmed_loss_ignores_the_worst_rows():
    # A tiny ensemble on data where a fifth of the rows are wild: with
    # trimming, the normal rows reconstruct better than without it.
    X = blob_with_outliers(5, n_samples=200, n_outliers=50)
    normal = X[:200]
    # The reconstruction error alone: trimming is about what the members learn.
    alone = dict(max_samples=1.0, neighbor_samples=0, error_weight=1.0)
    trimmed = ensemble(trim_fraction=0.3, **alone).fit(X)
    untrimmed = ensemble(trim_fraction=0.0, **alone).fit(X)
    gap = [
        np.median(m.score_samples(normal)) - np.median(m.score_samples(X[200:]))
        for m in (trimmed, untrimmed)
    ]
    assert gap[0] > gap[1]


@pytest.mark.parametrize("trim", [0.0, 0.2, 0.5])
def test_trimmed_loss_is_the_mean_of_each_members_best_rows(trim):
    # The first step's loss, before any update, checked against a sort in NumPy.
    rng = np.random.RandomState(0)
    X = torch.as_tensor(rng.normal(size=(3, 20, 5)), dtype=torch.float32)
    torch.manual_seed(0)
    net = ensemble_module._Members(5, 4, np.array([1, 2, 3]), 3, 0)
    net.init_weights()
    with torch.no_grad():
        errors = ((net.decode(net.encode(X)) - X) ** 2).mean(2).numpy()
    keep = round((1 - trim) * 20)
    expected = np.sort(errors, axis=1)[:, :keep].mean(1).mean()
    losses = net.train_trimmed(X, 1, 0.01, trim)
    np.testing.assert_allclose(losses[0], expected, rtol=1e-5)


def test_scaling_comes_from_a_sample_of_a_large_training_set(monkeypatch):
    monkeypatch.setattr(ensemble_module, "MAX_SCALING_ROWS", 100)
    seen = []
    scaling = ensemble_module._robust_scaling
    monkeypatch.setattr(
        ensemble_module, "_robust_scaling", lambda X: seen.append(X.copy()) or scaling(X)
    )
    X = blob_with_outliers(3)
    fitted = ensemble().fit(X)
    (rows,) = seen
    assert rows.shape == (100, X.shape[1])
    # Distinct rows of X, not the first hundred.
    matches = (rows[:, None, :] == X[None]).all(2)
    assert (matches.sum(1) == 1).all()
    assert matches.argmax(1).max() >= 100
    np.testing.assert_allclose(fitted.center_, np.median(rows, axis=0))


def test_constant_feature_and_tiny_data_give_finite_scores():
    X = np.random.RandomState(0).normal(size=(5, 3))
    X[:, 1] = 4.0
    scores = ensemble().fit(X).score_samples(X)
    assert np.all(np.isfinite(scores))


def test_values_beyond_float32_range_raise_meaningful_error():
    X = blob_with_outliers(0, n_samples=50)
    fitted = ensemble().fit(X)
    X[0, 0] = -1e39
    with pytest.raises(ValueError, match="beyond float32's range"):
        fitted.score_samples(X)
    with pytest.raises(ValueError, match="beyond float32's range"):
        ensemble().fit(X)


def test_diverging_training_raises_and_leaves_the_estimator_unfitted():
    X = blob_with_outliers(0, n_samples=50)
    model = ensemble(learning_rate_init=1e30)
    with pytest.raises(ValueError, match="learning_rate_init"):
        model.fit(X)
    assert not hasattr(model, "coefs_")


def test_fit_and_scores_leave_torchs_global_rng_alone():
    X = blob_with_outliers(6, n_samples=60)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fitted = ensemble().fit(X)
    fitted.score_samples(X)
    fitted.feature_errors(X)
    torch.testing.assert_close(torch.rand(3), expected)


def test_same_random_state_gives_the_same_model():
    X = blob_with_outliers(7)
    a, b = ensemble(random_state=1).fit(X), ensemble(random_state=1).fit(X)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.estimators_samples_, b.estimators_samples_)
    c = ensemble(random_state=2).fit(X)
    assert not np.allclose(a.score_samples(X), c.score_samples(X))


def test_fit_on_chunked_data_equals_the_array_fit():
    X = blob_with_outliers(8)
    array_fit = ensemble().fit(X)
    chunked_fit = ensemble().fit(ChunkedData(X, chunk_size=50, shuffle_window=2))
    np.testing.assert_array_equal(chunked_fit.estimators_samples_, array_fit.estimators_samples_)
    np.testing.assert_array_equal(chunked_fit.score_samples(X), array_fit.score_samples(X))
    assert chunked_fit.n_features_in_ == X.shape[1]


def test_chunked_data_beyond_the_reservoir_is_sampled_in_one_pass(monkeypatch):
    monkeypatch.setattr(ensemble_module, "MAX_STATISTICS_ROWS", 100)
    X = blob_with_outliers(9)
    reads = []

    def chunks():
        for start in range(0, len(X), 37):
            reads.append(start)
            yield X[start : start + 37]

    a = ensemble(max_samples=60).fit(ChunkedData(chunks))
    assert reads == list(range(0, len(X), 37))  # one pass, in order
    assert a.estimators_samples_.shape == (6, 60)
    assert a.estimators_samples_.max() < len(X)
    assert a.estimators_samples_.max() >= 100  # rows after the first 100 are drawn too
    for rows in a.estimators_samples_:
        assert len(np.unique(rows)) == 60
    b = ensemble(max_samples=60).fit(ChunkedData(chunks))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    scores = a.score_samples(X)
    assert np.median(scores[-12:]) < np.percentile(scores[:-12], 5)


def test_chunked_data_chunks_are_checked():
    X = blob_with_outliers(0, n_samples=60)
    with pytest.raises(ValueError, match="features"):
        ensemble().fit(ChunkedData(lambda: iter([X[:30], X[30:, :4]])))
    with pytest.raises(ValueError, match="at least 2"):
        ensemble().fit(ChunkedData(lambda: iter([X[:1]])))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_gives_the_dense_results(fmt, monkeypatch):
    # Small blocks: scaling statistics and inference densify a few rows/columns at a time.
    monkeypatch.setattr(ensemble_module._inference, "INFERENCE_BATCH_ELEMENTS", 600)
    X = blob_with_outliers(10)
    X[np.abs(X) < 0.5] = 0.0
    S = sp.csr_matrix(X).asformat(fmt)
    dense, sparse = ensemble().fit(X), ensemble().fit(S)
    np.testing.assert_array_equal(sparse.scale_, dense.scale_)
    np.testing.assert_array_equal(sparse.score_samples(S), dense.score_samples(X))
    np.testing.assert_array_equal(sparse.feature_errors(S), dense.feature_errors(X))
    assert get_tags(sparse).input_tags.sparse


def test_sparse_values_beyond_float32_range_raise():
    S = sp.csr_matrix(np.eye(6))
    S[0, 0] = 1e39
    with pytest.raises(ValueError, match="beyond float32's range"):
        ensemble().fit(S)


def count_builds(monkeypatch):
    builds = []
    original = ensemble_module._Members.from_arrays.__func__

    def counted(cls, *args):
        builds.append(1)
        return original(cls, *args)

    monkeypatch.setattr(ensemble_module._Members, "from_arrays", classmethod(counted))
    return builds


def test_members_are_built_once_and_cached_between_calls(monkeypatch):
    builds = count_builds(monkeypatch)
    X = blob_with_outliers(11, n_samples=80)
    fitted = ensemble().fit(X)
    first = fitted.score_samples(X)
    fitted.score_samples(X)
    fitted.feature_errors(X)
    assert builds == []  # the trained members score until the next fit
    loaded = pickle.loads(pickle.dumps(fitted))
    assert "_members_cache" not in fitted.__getstate__()
    np.testing.assert_array_equal(loaded.score_samples(X), first)
    loaded.score_samples(X)
    loaded.feature_errors(X)
    assert len(builds) == 1  # rebuilt once after loading
    # A refit replaces the cached members.
    refit = fitted.set_params(random_state=5).fit(X)
    np.testing.assert_array_equal(
        refit.score_samples(X), ensemble(random_state=5).fit(X).score_samples(X)
    )


def test_failed_refit_leaves_the_fitted_ensemble_as_it_was():
    X = blob_with_outliers(12, n_samples=80)
    fitted = ensemble().fit(X)
    scores, state = fitted.score_samples(X), dict(fitted.__dict__)
    with pytest.raises(ValueError, match="learning_rate_init"):
        fitted.set_params(learning_rate_init=1e30).fit(X[::-1])
    fitted.set_params(learning_rate_init=0.01)
    with pytest.raises(ValueError, match="features"):
        fitted.fit(ChunkedData(lambda: iter([X[:40], X[40:, :3]])))
    assert fitted.__dict__.keys() == state.keys()
    fitted_state = [k for k in state if k not in fitted.get_params()]
    assert all(fitted.__dict__[k] is state[k] for k in fitted_state)
    np.testing.assert_array_equal(fitted.score_samples(X), scores)


def grouped_neighbour_term(fitted, X):
    """The normalised neighbour term, computed with NumPy from the fitted attributes."""
    scaled = (X - fitted.center_) / fitted.scale_
    members, n_rows, _ = fitted.neighbor_rows_.shape
    groups = fitted.neighbor_groups_
    size = n_rows // groups
    rows = fitted.neighbor_rows_[:, : groups * size].reshape(members, groups, size, -1)
    # Each member's rows X in its own feature scales: (members, X rows, 1, 1, f).
    own = (scaled[None] * fitted.neighbor_weights_[:, None])[:, :, None, None]
    gaps = own - rows[:, None]  # (members, X rows, groups, size, f)
    nearest = np.sqrt((gaps**2).sum(-1)).min(-1).mean(-1)  # (members, X rows)
    median, mad = fitted.neighbor_median_[:, None], fitted.neighbor_mad_[:, None]
    return ((nearest - median) / mad).mean(0)


@pytest.mark.parametrize("error_weight", [0.0, 1.0, 3.0])
def test_score_is_the_weighted_mean_of_the_error_and_the_grouped_neighbour_terms(error_weight):
    X = blob_with_outliers(12)
    fitted = ensemble(error_weight=error_weight, neighbor_groups=4).fit(X)
    assert fitted.neighbor_groups_ == 4
    # New rows: a training row's distance to itself, near 0, is off by up to
    # ~1e-3 in float32 (|x|^2 - 2 x.r + |r|^2), magnified by the MADs.
    new = blob_with_outliers(112)
    neighbor = grouped_neighbour_term(fitted, new)
    # The error term from the per-feature errors (which are divided by each MAD).
    shift = np.mean(fitted.error_median_ / fitted.error_mad_)
    error = fitted.feature_errors(new).mean(axis=1) - shift
    expected = -(error_weight * error + neighbor) / (error_weight + 1)
    np.testing.assert_allclose(fitted.score_samples(new), expected, rtol=1e-4, atol=1e-3)


def test_neighbour_rows_are_the_first_members_whole_subsamples():
    X = blob_with_outliers(13)
    fitted = ensemble(n_estimators=10, max_samples=100).fit(X)
    assert fitted.neighbor_rows_.shape == (8, 100, 6)
    scaled = np.clip((X - fitted.center_) / fitted.scale_, -1e6, 1e6)
    expected = scaled[fitted.estimators_samples_[:8]] * fitted.neighbor_weights_[:, None]
    np.testing.assert_allclose(fitted.neighbor_rows_, expected, rtol=1e-5, atol=1e-5)
    # "auto" groups: 8 in unlabelled data, 1 (the nearest row) with novelty=True;
    # capped so that every group keeps two rows.
    assert fitted.neighbor_groups_ == 8
    assert ensemble(novelty=True).fit(X).neighbor_groups_ == 1
    assert ensemble(max_samples=10, neighbor_groups=8).fit(X).neighbor_groups_ == 5


@pytest.mark.parametrize("novelty", [False, True])
def test_members_beyond_the_eighth_leave_the_default_score_alone(novelty):
    # The default score reads the first eight members' neighbour rows only, so
    # the default n_estimators=8 scores as 32 members do (their subsamples are
    # drawn first); with error_weight > 0 the extra members enter the score.
    X = blob_with_outliers(14)
    eight = AutoEncoderEnsemble(random_state=0, device="cpu", novelty=novelty).fit(X)
    more = AutoEncoderEnsemble(n_estimators=32, random_state=0, device="cpu", novelty=novelty)
    more.fit(X)
    assert eight.n_estimators == 8 and eight.estimators_samples_.shape[0] == 8
    np.testing.assert_array_equal(eight.neighbor_rows_, more.neighbor_rows_)
    np.testing.assert_allclose(eight.score_samples(X), more.score_samples(X), rtol=1e-6)
    mixed = dict(error_weight=1.0, random_state=0, device="cpu", novelty=novelty)
    assert not np.allclose(
        AutoEncoderEnsemble(**mixed).fit(X).score_samples(X),
        AutoEncoderEnsemble(n_estimators=32, **mixed).fit(X).score_samples(X),
    )


def test_groups_make_the_neighbour_term_robust_to_a_small_cluster_of_anomalies():
    # 5 identical far rows in the training data: each is the others' nearest
    # neighbour, so one group (the nearest row) sees them as normal; among
    # 8 groups most hold none of them.
    rng = np.random.RandomState(14)
    normal = rng.normal(size=(300, 4))
    cluster = np.full((5, 4), 6.0)
    X = np.vstack([normal, cluster])
    test = np.vstack([rng.normal(size=(50, 4)), np.full((1, 4), 6.0)])
    for groups, beaten in ((1, False), (8, True)):
        fitted = ensemble(max_samples=1.0, neighbor_groups=groups).fit(X)
        scores = fitted.score_samples(test)
        # Is the cluster's point scored below (more anomalous than) every normal row?
        assert (scores[-1] < scores[:-1].min()) == beaten


def test_no_term_left_is_refused():
    X = blob_with_outliers(15)
    with pytest.raises(ValueError, match="without a term"):
        ensemble(neighbor_samples=0, error_weight=0.0).fit(X)
    assert not hasattr(ensemble(), "coefs_")


def test_training_rows_are_not_their_own_neighbours():
    # 50 rows: every row is a neighbour row of every member. Counted as its own
    # neighbour, each would be at distance 0 and the median distance would be 0.
    X = blob_with_outliers(10, n_samples=50, n_outliers=0)
    fitted = ensemble(neighbor_samples=64).fit(X)
    assert fitted.neighbor_rows_.shape == (6, 50, 6)
    assert np.all(fitted.neighbor_median_ > 0.05)


def test_novelty_trims_nothing_and_uses_the_whole_subsample():
    X = blob_with_outliers(11)
    novelty = ensemble(novelty=True, max_samples=100).fit(X)
    assert novelty.neighbor_rows_.shape == (6, 100, 6)
    same = ensemble(trim_fraction=0.0, neighbor_samples=100, max_samples=100).fit(X)
    trimmed = ensemble(neighbor_samples=100, max_samples=100).fit(X)
    np.testing.assert_array_equal(novelty.loss_curve_, same.loss_curve_)
    assert not np.array_equal(novelty.loss_curve_, trimmed.loss_curve_)
    # Without neighbour rows it stays without them.
    no_rows = ensemble(novelty=True, neighbor_samples=0, error_weight=1.0).fit(X)
    assert no_rows.neighbor_rows_.shape[1] == 0


def test_sample_weight_draws_each_subsample_in_proportion_and_skips_zero_weights():
    X = np.random.default_rng(0).normal(size=(300, 4))
    weights = np.r_[np.zeros(100), np.ones(100), np.full(100, 4.0)]
    ens = AutoEncoderEnsemble(n_estimators=8, max_samples=50, max_iter=2, random_state=0)
    ens.fit(X, sample_weight=weights)
    drawn = ens.estimators_samples_.ravel()
    assert not np.isin(drawn, np.arange(100)).any()
    light, heavy = (
        np.isin(drawn, np.arange(100, 200)).sum(),
        np.isin(drawn, np.arange(200, 300)).sum(),
    )
    assert heavy > 2 * light  # drawn without replacement: less than 4x, but clearly more
    # Equal weights draw as no weights.
    plain = AutoEncoderEnsemble(n_estimators=2, max_iter=2, random_state=0).fit(X)
    equal = AutoEncoderEnsemble(n_estimators=2, max_iter=2, random_state=0)
    equal.fit(X, sample_weight=np.full(300, 2.0))
    assert np.array_equal(plain.estimators_samples_, equal.estimators_samples_)
    with pytest.raises(ValueError, match="one weight per sample"):
        AutoEncoderEnsemble(n_estimators=2, max_iter=2).fit(X, sample_weight=np.ones(3))


def test_neighbour_weights_give_each_scaling_its_feature_scales():
    # Feature spreads 1, 2, 4, 8, 100 and a constant feature: the median
    # spread of the varying ones is 4.
    rng = np.random.RandomState(15)
    spreads = np.array([1.0, 2.0, 4.0, 8.0, 100.0, 0.0])
    X = rng.normal(size=(2000, 6)) * spreads + 3.0
    for scaling, divisors in (("robust", spreads), ("none", np.full(6, 4.0))):
        fitted = ensemble(neighbor_scaling=scaling).fit(X)
        # A member measures its distances on (x - center) * weight: in units
        # of the divisors (a constant feature keeps its own units as "robust").
        unit = fitted.scale_ / fitted.neighbor_weights_[0]  # scale_ is 1 if constant
        expected = np.where(spreads > 0, divisors, 1.0 if scaling == "robust" else 4.0)
        np.testing.assert_allclose(unit, expected, rtol=0.1)
    mixed = ensemble(neighbor_scaling="mixed").fit(X).neighbor_weights_
    none = ensemble(neighbor_scaling="none").fit(X).neighbor_weights_[0]
    np.testing.assert_allclose(mixed, np.stack([np.ones(6)] * 3 + [none] * 3))


def test_robust_scale_is_the_iqr_floored_at_a_tenth_of_the_std_or_the_std_where_iqr_is_0():
    rng = np.random.RandomState(17)
    n = 4000
    gaussian = rng.normal(scale=2.0, size=n)  # IQR / 1.349 = std = 2
    heavy = rng.standard_t(1, size=n)  # IQR / 1.349 ~ 1.48, far below its std: floored
    one_hot = (rng.uniform(size=n) < 0.1).astype(float)  # 0 on 90% of the rows: IQR 0
    sparse_unit = np.where(rng.uniform(size=n) < 0.2, rng.exponential(5.0, size=n), 0.0)
    constant = np.full(n, 7.0)
    X = np.column_stack([gaussian, heavy, one_hot, sparse_unit, constant])
    center, scale = ensemble_module._robust_scaling(X)
    np.testing.assert_allclose(center, np.median(X, axis=0))
    assert scale[0] == pytest.approx(2.0, rel=0.05)
    q1, q3 = np.percentile(heavy, [25, 75])
    assert scale[1] == pytest.approx(max((q3 - q1) / 1.349, 0.1 * heavy.std()))
    # Where the IQR is 0 the scale is the std itself, not a tenth of it.
    np.testing.assert_allclose(scale[2:4], X[:, 2:4].std(axis=0))
    assert scale[4] == 0.0
    fitted = ensemble().fit(X)
    np.testing.assert_allclose(fitted.scale_, np.where(scale > 0, scale, 1.0), rtol=1e-6)


def test_ensembles_fitted_before_neighbour_scaling_score_with_the_robust_scaling():
    X = blob_with_outliers(16)
    robust = ensemble(neighbor_scaling="robust").fit(X)
    old = pickle.loads(pickle.dumps(robust))
    del old.neighbor_weights_, old.neighbor_scaling
    np.testing.assert_array_equal(old.score_samples(X), robust.score_samples(X))
