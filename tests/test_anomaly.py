"""AnomalyDetector: cutoffs, labels, explanations, validation, genericity."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

import skae
from skae import (
    AnomalyDetector,
    AutoEncoder,
    AutoEncoderEnsemble,
    ChunkedData,
    RecurrentAutoEncoder,
)


def ae(**kw):
    # One batch an epoch (the suite's budget, set before batch_size="auto").
    params = dict(
        hidden_layer_sizes=(16,), max_iter=60, batch_size=256, random_state=0, device="cpu"
    )
    return AutoEncoder(**{**params, **kw})


def low_rank_blob(seed, n_samples=300, n_features=8, rank=3, noise=0.1):
    """A Gaussian blob near a ``rank``-dimensional plane: features are correlated."""
    rng = np.random.RandomState(seed)
    mixing = rng.normal(size=(rank, n_features))
    return rng.normal(size=(n_samples, rank)) @ mixing + noise * rng.normal(
        size=(n_samples, n_features)
    ), mixing


def ensemble(**kw):
    params = dict(n_estimators=8, max_iter=50, random_state=0, device="cpu")
    return AutoEncoderEnsemble(**{**params, **kw})


ESTIMATORS = {
    "pca": lambda: PCA(n_components=3),
    "autoencoder": lambda: ae(n_components=3),
    "ensemble": ensemble,
}


@pytest.mark.parametrize("contamination", [0.02, 0.1, 0.25])
@pytest.mark.parametrize("make", ESTIMATORS.values(), ids=ESTIMATORS.keys())
def test_training_outlier_fraction_matches_contamination(make, contamination):
    X, _ = low_rank_blob(0)
    labels = AnomalyDetector(make(), contamination=contamination).fit_predict(X)
    assert set(np.unique(labels)) == {-1, 1}
    assert abs(np.mean(labels == -1) - contamination) <= 1 / len(X)


@pytest.mark.parametrize("contamination", ["auto", 0.1])
def test_decision_function_is_score_samples_minus_offset(contamination):
    X, _ = low_rank_blob(1)
    detector = AnomalyDetector(PCA(n_components=3), contamination=contamination).fit(X)
    inner = PCA(n_components=3).fit(X).score_samples(X)
    if contamination == "auto":
        q1, q3 = np.percentile(inner, [25, 75])
        expected_offset = q1 - 1.5 * (q3 - q1)
    else:
        expected_offset = np.percentile(inner, 10)
    assert detector.offset_ == pytest.approx(expected_offset)
    np.testing.assert_allclose(detector.score_samples(X), inner)
    np.testing.assert_allclose(detector.decision_function(X), inner - expected_offset)
    np.testing.assert_array_equal(detector.predict(X), np.where(inner - expected_offset < 0, -1, 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("make", ESTIMATORS.values(), ids=ESTIMATORS.keys())
def test_far_points_are_outliers_and_blob_points_inliers(make, seed):
    X, mixing = low_rank_blob(seed)
    detector = make_pipeline(StandardScaler(), AnomalyDetector(make())).fit(X)
    rng = np.random.RandomState(100 + seed)
    # Fresh points from the blob's core, and points 8 standard deviations away.
    core = 0.5 * rng.normal(size=(20, 3)) @ mixing
    directions = rng.normal(size=(20, X.shape[1]))
    far = X.mean(0) + 8 * X.std(0) * directions / np.linalg.norm(directions, axis=1)[:, None]
    np.testing.assert_array_equal(detector.predict(core), 1)
    np.testing.assert_array_equal(detector.predict(far), -1)


def test_auto_cutoff_flags_planted_outliers_in_contaminated_training_data():
    X, _ = low_rank_blob(3, n_samples=400)
    rng = np.random.RandomState(3)
    outliers = rng.uniform(-12, 12, size=(20, X.shape[1]))
    X_train = np.vstack([X, outliers])
    labels = AnomalyDetector(PCA(n_components=3)).fit_predict(X_train)
    assert np.all(labels[len(X) :] == -1)
    # The cutoff is not a fixed quantile: few inliers are flagged.
    assert np.mean(labels[: len(X)] == -1) < 0.05


def redundant_sensors(seed, n_samples=400, n_factors=3, copies=3):
    """Each of ``n_factors`` hidden signals read by ``copies`` noisy sensors.

    Every feature is predictable from the other sensors of its group, so a
    corrupted reading is the feature a good explanation must point at. The
    sensors share one scale (as after a StandardScaler) and differ in sign.
    """
    rng = np.random.RandomState(seed)
    factors = rng.normal(size=(n_samples, n_factors))
    signs = rng.choice([-1, 1], size=n_factors * copies)
    X = np.repeat(factors, copies, axis=1) * signs
    return X + 0.1 * rng.normal(size=X.shape)


@pytest.fixture(scope="module")
def fitted_autoencoder_detector():
    X = redundant_sensors(4)
    return AnomalyDetector(ae(n_components=3, max_iter=100)).fit(X), X


def test_feature_errors_average_to_the_autoencoder_score(fitted_autoencoder_detector):
    detector, X = fitted_autoencoder_detector
    errors = detector.feature_errors(X[:50])
    assert errors.shape == (50, X.shape[1])
    np.testing.assert_allclose(errors.mean(axis=1), -detector.score_samples(X[:50]), rtol=1e-5)


@pytest.mark.parametrize("feature", range(9))
def test_feature_errors_point_at_the_corrupted_feature(fitted_autoencoder_detector, feature):
    detector, X = fitted_autoencoder_detector
    pca_detector = AnomalyDetector(PCA(n_components=3)).fit(X)
    clean = X[:10]
    corrupted = clean.copy()
    corrupted[:, feature] += 5 * X[:, feature].std()
    # A linear model puts the largest error on the corrupted reading of every
    # sample.
    np.testing.assert_array_equal(pca_detector.feature_errors(corrupted).argmax(axis=1), feature)
    # A nonlinear one extrapolates outside its training range, so the error
    # sometimes lands on a sibling sensor: it must still point at the
    # corrupted feature on average and for most samples (on every seed tried).
    errors = detector.feature_errors(corrupted)
    assert errors.mean(axis=0).argmax() == feature
    assert np.sum(errors.argmax(axis=1) == feature) >= 6
    for det in (detector, pca_detector):
        assert np.all(det.score_samples(corrupted) < det.score_samples(clean))


@pytest.mark.parametrize("contamination", [0, 0.6, -0.1, "x"])
def test_invalid_contamination_raises_meaningful_error(contamination):
    X, _ = low_rank_blob(0, n_samples=50)
    with pytest.raises(ValueError, match=r"'contamination' parameter .* \(0.0, 0.5\]"):
        AnomalyDetector(PCA(n_components=2), contamination=contamination).fit(X)


@pytest.mark.parametrize("estimator", [KMeans(n_clusters=2), StandardScaler(), "pca"])
def test_estimator_without_score_samples_raises_meaningful_error(estimator):
    X, _ = low_rank_blob(0, n_samples=50)
    with pytest.raises(ValueError, match=r"'estimator' parameter .*'score_samples'"):
        AnomalyDetector(estimator).fit(X)


def test_feature_errors_is_absent_without_inverse_transform():
    detector = AnomalyDetector(ScoresFirstTimestep()).fit(np.zeros((5, 4, 2)))
    assert not hasattr(detector, "feature_errors")
    assert hasattr(AnomalyDetector(PCA()), "feature_errors")


def test_failed_fit_leaves_detector_unfitted():
    X, _ = low_rank_blob(0, n_samples=50)
    X[3, 2] = np.nan
    detector = AnomalyDetector(PCA(n_components=2))
    with pytest.raises(ValueError, match="NaN"):
        detector.fit(X)
    assert not hasattr(detector, "estimator_")
    assert not hasattr(detector, "offset_")


class ScoresFirstTimestep(BaseEstimator):
    """Scores 3-D input (n_samples, n_timesteps, n_features); validates it itself."""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        if X.ndim != 3:
            raise ValueError(f"expected 3-D input, got {X.ndim}-D")
        self.center_ = X.mean(axis=0)
        return self

    def score_samples(self, X):
        X = np.asarray(X, dtype=float)
        return -((X - self.center_) ** 2).sum(axis=(1, 2))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


def test_wrapper_passes_sequence_input_to_an_estimator_that_validates_it():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 5, 2))
    X_new = np.concatenate([0.1 * X[:3], 20 + X[:2]])  # near the centre, far off
    detector = AnomalyDetector(ScoresFirstTimestep(), contamination=0.05).fit(X)
    np.testing.assert_array_equal(detector.predict(X_new), [1, 1, 1, -1, -1])
    tags = get_tags(detector).input_tags
    assert (tags.two_d_array, tags.three_d_array) == (False, True)
    assert get_tags(AnomalyDetector()).input_tags.two_d_array


class NaNScorer(ScoresFirstTimestep):
    def score_samples(self, X):
        scores = super().score_samples(X)
        scores[0] = np.nan
        return scores


def test_nan_scores_raise_instead_of_silent_labels():
    with pytest.raises(ValueError, match="returned NaN"):
        AnomalyDetector(NaNScorer()).fit(np.zeros((5, 4, 2)))


def test_pipeline_equals_detector_on_scaled_data():
    X, _ = low_rank_blob(5)
    X = 100 * X + 7
    pipe = make_pipeline(StandardScaler(), AnomalyDetector(ae(n_components=3))).fit(X)
    X_scaled = StandardScaler().fit_transform(X)
    alone = AnomalyDetector(ae(n_components=3)).fit(X_scaled)
    np.testing.assert_allclose(pipe.decision_function(X), alone.decision_function(X_scaled))
    assert pipe[-1].offset_ == pytest.approx(alone.offset_)


def test_default_estimator_is_the_ensemble_and_is_not_mutated():
    X, _ = low_rank_blob(6, n_samples=100)
    detector = AnomalyDetector(random_state=0).set_params(contamination=0.1)
    detector.fit(X)
    assert detector.estimator is None
    assert isinstance(detector.estimator_, AutoEncoderEnsemble)
    assert detector.estimator_.n_estimators == AutoEncoderEnsemble().n_estimators
    assert detector.n_features_in_ == 8


@pytest.mark.parametrize("make", [ensemble, ae], ids=["ensemble", "autoencoder"])
def test_int_random_state_makes_fits_reproducible(make):
    X, _ = low_rank_blob(7, n_samples=200)
    inner = make(random_state=None)
    fits = [AnomalyDetector(inner, random_state=3).fit(X) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].score_samples(X), fits[1].score_samples(X))
    assert fits[0].offset_ == fits[1].offset_
    other = AnomalyDetector(inner, random_state=4).fit(X)
    assert not np.allclose(other.score_samples(X), fits[0].score_samples(X))
    # The user's estimator is cloned, never seeded in place.
    assert inner.random_state is None
    assert isinstance(fits[0].estimator_.random_state, int)


def test_default_detector_with_int_random_state_is_reproducible():
    X, _ = low_rank_blob(8, n_samples=150)
    scores = [AnomalyDetector(random_state=0).fit(X).score_samples(X) for _ in range(2)]
    np.testing.assert_array_equal(scores[0], scores[1])


def test_random_state_none_keeps_the_estimators_own_seed():
    X, _ = low_rank_blob(9, n_samples=150)
    a = AnomalyDetector(ensemble(random_state=5)).fit(X)
    b = AnomalyDetector(ensemble(random_state=5)).fit(X)
    assert a.estimator_.random_state == 5
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


def test_default_detector_accepts_nested_set_params():
    X, _ = low_rank_blob(10, n_samples=80)
    detector = AnomalyDetector(random_state=0).set_params(
        estimator__n_estimators=3, estimator__max_iter=5
    )
    assert detector.get_params()["estimator__n_estimators"] == 3
    detector.fit(X)
    assert (detector.estimator_.n_estimators, detector.estimator_.n_iter_) == (3, 5)


def test_estimator_class_instead_of_instance_raises_type_error():
    X, _ = low_rank_blob(0, n_samples=50)
    with pytest.raises(TypeError, match=r"instance, e.g. AutoEncoder\(\), got the class"):
        AnomalyDetector(estimator=AutoEncoder).fit(X)


def test_unfitted_predict_raises_not_fitted_error_even_for_a_bad_estimator():
    X, _ = low_rank_blob(0, n_samples=20)
    with pytest.raises(NotFittedError):
        AnomalyDetector("x").predict(X)


@pytest.mark.parametrize("make", [ensemble, ae], ids=["ensemble", "autoencoder"])
def test_values_beyond_float32_range_raise_instead_of_silent_labels(make):
    X, _ = low_rank_blob(0, n_samples=60)
    detector = AnomalyDetector(make()).fit(X)
    X_bad = X[:3].copy()
    X_bad[0, 0] = 1e39
    with pytest.raises(ValueError, match="float32|NaN"):
        detector.predict(X_bad)


def test_feature_errors_for_variable_length_sequences():
    rng = np.random.RandomState(0)
    seqs = [np.sin(np.arange(n)[:, None] / 3 + rng.uniform(size=2)) for n in range(5, 13)]
    recurrent = RecurrentAutoEncoder(
        n_components=2, hidden_size=8, max_iter=30, random_state=0, device="cpu"
    )
    detector = AnomalyDetector(recurrent).fit(seqs)
    errors = detector.feature_errors(seqs)
    assert [e.shape for e in errors] == [s.shape for s in seqs]
    # They are the squared differences to the model's own reconstructions.
    fitted = detector.estimator_
    lengths = [len(s) for s in seqs]
    X_hat = fitted.inverse_transform(fitted.transform(seqs), n_timesteps=lengths)
    for e, s, s_hat in zip(errors, seqs, X_hat, strict=True):
        np.testing.assert_allclose(e, (s - s_hat) ** 2, rtol=1e-5)


@pytest.fixture(scope="module")
def fitted_default_detector():
    X = redundant_sensors(11)
    return AnomalyDetector(random_state=0).fit(X), X


@pytest.mark.parametrize("feature", range(9))
def test_default_detector_feature_errors_point_at_the_corrupted_feature(
    fitted_default_detector, feature
):
    detector, X = fitted_default_detector
    clean = X[:10]
    corrupted = clean.copy()
    corrupted[:, feature] += 5 * X[:, feature].std()
    errors = detector.feature_errors(corrupted)
    assert errors.shape == corrupted.shape
    assert errors.mean(axis=0).argmax() == feature
    assert np.sum(errors.argmax(axis=1) == feature) >= 8
    assert np.all(detector.score_samples(corrupted) < detector.score_samples(clean))


class InfiniteScorer(ScoresFirstTimestep):
    def score_samples(self, X):
        return np.where(np.arange(len(X)) % 2 == 0, np.inf, -np.inf)


def test_infinite_training_scores_raise_instead_of_a_nan_cutoff():
    with pytest.raises(ValueError, match="finite cutoff"):
        AnomalyDetector(InfiniteScorer()).fit(np.zeros((8, 4, 2)))


def test_default_detector_fits_chunked_data_as_the_array():
    X, _ = low_rank_blob(20)
    data = ChunkedData(X, chunk_size=64)
    chunked = AnomalyDetector(ensemble()).fit(data)
    array = AnomalyDetector(ensemble()).fit(X)
    assert chunked.offset_ == array.offset_
    np.testing.assert_array_equal(chunked.decision_function(X), array.decision_function(X))
    np.testing.assert_array_equal(AnomalyDetector(ensemble()).fit_predict(data), array.predict(X))


def test_autoencoder_detector_sets_its_cutoff_from_chunk_by_chunk_scores():
    X, _ = low_rank_blob(21)
    detector = AnomalyDetector(ae(n_components=3, max_iter=5), contamination=0.1)
    detector.fit(ChunkedData(X, chunk_size=70))
    expected = np.percentile(detector.estimator_.score_samples(X), 10)
    np.testing.assert_allclose(detector.offset_, expected, rtol=1e-12)


def test_chunked_data_for_an_estimator_that_cannot_read_it_raises_type_error():
    X, _ = low_rank_blob(22)
    with pytest.raises(TypeError, match="ChunkedData"):
        AnomalyDetector(PCA(2)).fit(ChunkedData(X, chunk_size=50))


@pytest.mark.parametrize("make", ESTIMATORS.values(), ids=ESTIMATORS.keys())
def test_feature_errors_of_sparse_input_equal_the_dense_ones(make, monkeypatch):
    X, _ = low_rank_blob(23, n_samples=120)
    X[np.abs(X) < 0.5] = 0.0
    detector = AnomalyDetector(make()).fit(X)
    # Foreign estimators get dense batches of a few rows.
    monkeypatch.setattr(skae._inference, "INFERENCE_BATCH_ROWS", 16)
    for S in (sp.csr_matrix(X), sp.csc_matrix(X)):
        np.testing.assert_allclose(
            detector.feature_errors(S), detector.feature_errors(X), rtol=1e-6, atol=1e-12
        )


# ------------------------------------------ parameters, weights and routing


def test_default_detector_lists_the_ensembles_nested_parameters():
    params = AnomalyDetector().get_params(deep=True)
    nested = {k[len("estimator__") :]: v for k, v in params.items() if k.startswith("estimator__")}
    assert nested == AutoEncoderEnsemble().get_params(deep=True)
    assert "estimator__n_estimators" not in AnomalyDetector().get_params(deep=False)
    # What get_params lists, set_params takes (as a search sets it).
    detector = AnomalyDetector().set_params(estimator__n_estimators=3)
    assert detector.get_params()["estimator__n_estimators"] == 3


class FirstColumnScorer(BaseEstimator):
    """Scores minus the first column; records the weights fit was given."""

    def fit(self, X, y=None, sample_weight=None):
        self.sample_weight_ = sample_weight
        return self

    def score_samples(self, X):
        return -np.asarray(X, dtype=np.float64)[:, 0]


def test_sample_weight_gives_a_weighted_cutoff_and_reaches_the_estimator():
    X = np.c_[np.arange(10.0), np.zeros(10)]  # scores 0, -1, ..., -9
    weights = np.r_[np.full(5, 3.0), np.ones(5)]  # rows scoring 0..-4 weigh 3
    detector = AnomalyDetector(FirstColumnScorer(), contamination=0.25)
    detector.fit(X, sample_weight=weights)
    # A quarter of the total weight 20 is reached at -5 (weights 1 each from -9 up).
    assert detector.offset_ == -5.0
    assert detector.estimator_.sample_weight_ is weights
    unweighted = AnomalyDetector(FirstColumnScorer(), contamination=0.25).fit(X)
    assert unweighted.offset_ == pytest.approx(np.percentile(-np.arange(10.0), 25))
    labels = AnomalyDetector(FirstColumnScorer(), contamination=0.25).fit_predict(
        X, sample_weight=weights
    )
    assert (labels == -1).sum() == 4  # the rows scoring below -5


def test_sample_weight_for_an_estimator_without_it_is_a_clear_error():
    with pytest.raises(TypeError, match="PCA.fit takes no sample_weight"):
        AnomalyDetector(PCA(1)).fit(np.ones((5, 2)), sample_weight=np.ones(5))
    with pytest.raises(TypeError, match="enable_metadata_routing"):
        AnomalyDetector(PCA(1)).fit(np.ones((5, 2)), groups=np.ones(5))


def test_metadata_routing_sends_sample_weight_through_a_pipeline():
    import sklearn

    X = np.c_[np.arange(10.0), np.zeros(10)]
    weights = np.r_[np.full(5, 3.0), np.ones(5)]
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = FirstColumnScorer().set_fit_request(sample_weight=True)
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            AnomalyDetector(scorer, contamination=0.25),
        ).fit(X, sample_weight=weights)
        assert pipe[-1].estimator_.sample_weight_ is weights
        unrequested = make_pipeline(AnomalyDetector(FirstColumnScorer(), contamination=0.25))
        with pytest.raises(ValueError, match="sample_weight"):
            unrequested.fit(X, sample_weight=weights)


class _CountingPCA(PCA):
    """PCA that records how many rows each score_samples call gets."""

    calls: list = []

    def score_samples(self, X):
        _CountingPCA.calls.append(len(X))
        return super().score_samples(X)


def test_cutoff_comes_from_a_sample_of_a_large_training_set(monkeypatch):
    from skae import anomaly as anomaly_module

    monkeypatch.setattr(anomaly_module, "MAX_OFFSET_ROWS", 100)
    X = np.random.RandomState(0).normal(size=(400, 5))
    _CountingPCA.calls = []
    detector = AnomalyDetector(_CountingPCA(2), random_state=0).fit(X)
    assert _CountingPCA.calls == [100]
    # The same seed draws the same sample: the same cutoff.
    again = AnomalyDetector(_CountingPCA(2), random_state=0).fit(X)
    assert again.offset_ == detector.offset_
    # fit_predict labels every training row, so it scores them all.
    _CountingPCA.calls = []
    labels = AnomalyDetector(_CountingPCA(2), random_state=0).fit_predict(X)
    assert _CountingPCA.calls == [400] and labels.shape == (400,)
