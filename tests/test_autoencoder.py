"""The AutoEncoder family (skae.autoencoder): in scikit-learn's tools (pipelines, grid
search), against PCA on a curved manifold, and its fitted attributes."""

import numpy as np
import pytest
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
