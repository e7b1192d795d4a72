"""The AutoEncoder family (skae.autoencoder): in scikit-learn's tools (pipelines, grid
search), against PCA on a curved manifold, and its fitted attributes."""

import numpy as np
import pytest
import scipy.sparse
import torch
from _settings import curved_manifold
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import (
    AutoEncoder,
)
from skae.architectures import Convolutional2D


@pytest.fixture(scope="module")
def X(X_120x6):
    return X_120x6


@pytest.fixture(scope="module")
def fitted(fitted_autoencoder):
    return fitted_autoencoder


# -------------------------------------------------------------------------- integration


def test_pipeline_with_classifier_on_digits():
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(),
        AutoEncoder(n_components=16, hidden_layer_sizes=(64,), max_iter=30, random_state=0),
        LogisticRegression(max_iter=500),
    )
    pipe.fit(X[::2], y[::2])
    accuracy = pipe.score(X[1::2], y[1::2])
    # Chance is 0.1; a code that kept the digits' structure gives far more.
    assert accuracy > 0.8


def test_grid_search_without_scoring_picks_the_best_reconstruction():
    X, _ = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    search = GridSearchCV(
        AutoEncoder(max_iter=15, batch_size=256, random_state=0),  # the suite's budget
        {"n_components": [2, 16], "hidden_layer_sizes": [(32,), (64,)]},
        cv=3,
        n_jobs=2,
    ).fit(X)
    means = search.cv_results_["mean_test_score"]
    assert search.best_score_ == pytest.approx(means.max())
    assert np.all(means < 0)  # score is a negative reconstruction error
    # A 16-value code reconstructs 64 pixels better than a 2-value one.
    assert search.best_params_["n_components"] == 16


def test_autoencoder_beats_pca_on_a_curved_manifold():
    for seed in (0, 1, 2):
        X = curved_manifold(seed)
        pca = PCA(n_components=1).fit(X)
        pca_error = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
        ae = AutoEncoder(
            n_components=1,
            hidden_layer_sizes=(32,),
            activation="tanh",
            learning_rate_init=1e-2,
            batch_size=64,
            max_iter=300,
            random_state=seed,
        ).fit(X)
        ae_error = np.mean((ae.inverse_transform(ae.transform(X)) - X) ** 2)
        # Seen: the autoencoder's error is 1-2% of PCA's on seeds 0-4.
        assert ae_error < 0.2 * pca_error


# ------------------------------------------------------------------------- fitted state


def test_fitted_attributes(X, fitted):
    assert fitted.n_features_in_ == X.shape[1]
    assert fitted.n_iter_ == len(fitted.loss_curve_) == len(fitted.history_)
    assert isinstance(fitted.module_, torch.nn.Module)
    assert not hasattr(fitted, "validation_scores_")
    assert list(fitted.get_feature_names_out()) == [f"autoencoder{i}" for i in range(3)]


def test_training_loss_decreases(X, fitted):
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]


# ------------------------------------------------------------ multinomial loss


def topic_counts(n_docs, seed, n_words=40, n_topics=4):
    """Word counts of documents drawn from one of ``n_topics`` word distributions."""
    rng = np.random.RandomState(0)  # the same topics for every seed
    topics = rng.dirichlet(np.full(n_words, 0.1), size=n_topics)
    draws = np.random.RandomState(seed)
    which = draws.randint(n_topics, size=n_docs)
    counts = np.array([draws.multinomial(20, topics[t]) for t in which], dtype=float)
    return scipy.sparse.csr_matrix(counts), which


def test_multinomial_loss_models_rows_as_distributions():
    X, _ = topic_counts(300, seed=0)
    ae = AutoEncoder(
        4,
        loss="multinomial",
        hidden_layer_sizes=(32,),
        max_iter=30,
        batch_size=32,
        tol=None,
        random_state=0,
        device="cpu",
    ).fit(X)
    P = ae.inverse_transform(ae.transform(X))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-5)
    dense = X.toarray()
    # score_samples is the multinomial log-likelihood of the counts under P.
    np.testing.assert_allclose(
        ae.score_samples(X), (dense * np.log(P)).sum(axis=1), rtol=1e-4, atol=1e-3
    )
    # Far better than the uniform distribution over the 40 words (20 * log 40 = 73.8).
    assert -ae.score(X) < 0.6 * 20 * np.log(40)
    assert ae.feature_errors(X).shape == X.shape


def test_multinomial_loss_refuses_negative_values_and_non_tables():
    with pytest.raises(ValueError, match="non-negative"):
        AutoEncoder(2, loss="multinomial", max_iter=1).fit(-np.ones((10, 3)))
    images = np.random.RandomState(0).uniform(size=(10, 8, 8))
    with pytest.raises(ValueError, match="tables only"):
        AutoEncoder(2, loss="multinomial", architecture=Convolutional2D(), max_iter=1).fit(images)


def test_multinomial_loss_exports_transform_and_refuses_scores_in_onnx():
    pytest.importorskip("onnx")
    from skae import to_onnx

    X, _ = topic_counts(50, seed=0)
    ae = AutoEncoder(2, loss="multinomial", max_iter=2, tol=None, random_state=0).fit(X)
    assert to_onnx(ae, "transform") is not None
    with pytest.raises(ValueError, match="multinomial"):
        to_onnx(ae, "score_samples")
