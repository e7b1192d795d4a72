"""Sparse input (scipy CSR/CSC matrices and arrays) for the table families."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils import get_tags

from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
    _inference,
)
from skae._batching import SparseRows, split_rows

FAST = dict(hidden_layer_sizes=(8,), max_iter=5, batch_size=16, random_state=0, device="cpu")

TABLE_FAMILIES = [
    AutoEncoder(n_components=3, **FAST),
    DenoisingAutoEncoder(n_components=3, noise="salt_pepper", noise_level=0.2, **FAST),
    SparseAutoEncoder(n_components=3, sparsity="kl", **FAST),
    VariationalAutoEncoder(n_components=3, likelihood="bernoulli", **FAST),
]


@pytest.fixture
def X_sparse():
    # Non-negative values in [0, 1], as TF-IDF, with some all-zero rows.
    X = sp.random(60, 12, density=0.25, format="csr", random_state=np.random.RandomState(0))
    keep = np.ones(60)
    keep[[4, 17]] = 0
    X = (sp.diags(keep) @ X).tocsr()
    X.eliminate_zeros()
    return X


# ----------------------------------------------------------- SparseRows


def test_sparse_rows_gathers_dense_rows_in_any_order(X_sparse):
    rows = SparseRows.from_scipy(X_sparse, "cpu")
    dense = X_sparse.toarray().astype(np.float32)
    order = torch.tensor([5, 4, 0, 59, 17, 5])
    np.testing.assert_array_equal(rows[order].numpy(), dense[order.numpy()])
    np.testing.assert_array_equal(rows[10:25].numpy(), dense[10:25])
    np.testing.assert_array_equal(rows[:].numpy(), dense)


def test_sparse_rows_take_keeps_the_selected_rows_sparse(X_sparse):
    rows = SparseRows.from_scipy(X_sparse, "cpu")
    picked = torch.tensor([17, 3, 40])
    part = rows.take(picked)
    assert isinstance(part, SparseRows)
    assert part.shape == (3, 12)
    assert len(part.data) == X_sparse[picked.numpy()].nnz
    expected = X_sparse[picked.numpy()].toarray().astype(np.float32)
    np.testing.assert_array_equal(part[:].numpy(), expected)


def test_sparse_rows_sums_duplicate_entries_as_scipy_does():
    X = sp.csr_matrix((np.array([1.0, 2.0, 5.0]), np.array([1, 1, 0]), np.array([0, 2, 3])))
    assert not X.has_canonical_format
    np.testing.assert_array_equal(SparseRows.from_scipy(X, "cpu")[:].numpy(), [[0, 3], [5, 0]])


def test_sparse_rows_of_an_all_zero_matrix_are_zeros():
    rows = SparseRows.from_scipy(sp.csr_matrix((3, 4)), "cpu")
    np.testing.assert_array_equal(rows[torch.tensor([2, 0])].numpy(), np.zeros((2, 4)))


def test_split_rows_splits_sparse_rows_like_dense_ones(X_sparse):
    dense = torch.tensor(X_sparse.toarray(), dtype=torch.float32)
    torch.manual_seed(0)
    (train_d,), (valid_d,) = split_rows((dense,), 0.25)
    torch.manual_seed(0)
    (train_s,), (valid_s,) = split_rows((SparseRows.from_scipy(X_sparse, "cpu"),), 0.25)
    np.testing.assert_array_equal(train_s[:].numpy(), train_d.numpy())
    np.testing.assert_array_equal(valid_s[:].numpy(), valid_d.numpy())


# ------------------------------------------------- sparse = dense, per family


@pytest.mark.parametrize("estimator", TABLE_FAMILIES, ids=lambda e: type(e).__name__)
def test_sparse_fit_gives_the_model_of_its_dense_equivalent(estimator, X_sparse):
    on_sparse = clone(estimator).fit(X_sparse)
    on_dense = clone(estimator).fit(X_sparse.toarray())
    np.testing.assert_allclose(on_sparse.loss_curve_, on_dense.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(
        on_sparse.transform(X_sparse), on_dense.transform(X_sparse.toarray()), atol=1e-6
    )
    np.testing.assert_allclose(
        on_sparse.score_samples(X_sparse), on_dense.score_samples(X_sparse.toarray()), atol=1e-5
    )


def test_sparse_fit_with_early_stopping_matches_dense(X_sparse):
    ae = AutoEncoder(n_components=3, early_stopping=True, validation_fraction=0.2, **FAST)
    on_sparse = clone(ae).fit(X_sparse)
    on_dense = clone(ae).fit(X_sparse.toarray())
    np.testing.assert_allclose(on_sparse.validation_scores_, on_dense.validation_scores_, rtol=1e-5)


def test_denoising_data_range_is_read_from_sparse_input(X_sparse):
    dae = DenoisingAutoEncoder(n_components=3, noise="salt_pepper", **FAST).fit(X_sparse)
    np.testing.assert_array_equal(dae.data_max_, X_sparse.toarray().max(axis=0))
    np.testing.assert_array_equal(dae.data_min_, X_sparse.toarray().min(axis=0))
    assert dae.denoise(X_sparse).shape == (60, 12)


@pytest.mark.parametrize(
    "convert",
    [sp.csc_matrix, sp.csr_array, sp.csc_array, sp.coo_matrix],
    ids=["csc_matrix", "csr_array", "csc_array", "coo_matrix"],
)
def test_other_sparse_formats_give_the_csr_model(convert, X_sparse):
    ae = AutoEncoder(n_components=3, **FAST)
    reference = clone(ae).fit(X_sparse).transform(X_sparse)
    codes = clone(ae).fit(convert(X_sparse)).transform(convert(X_sparse))
    np.testing.assert_allclose(codes, reference, atol=1e-6)


def test_float32_sparse_input_gives_float32_codes(X_sparse):
    X32 = X_sparse.astype(np.float32)
    assert AutoEncoder(n_components=3, **FAST).fit(X32).transform(X32).dtype == np.float32


# ------------------------------------------------ one dense batch at a time


def test_fit_and_transform_densify_one_batch_at_a_time(X_sparse, monkeypatch):
    seen = []
    gather = SparseRows.__getitem__

    def recording(self, rows):
        batch = gather(self, rows)
        seen.append(len(batch))
        return batch

    def refuse(*args, **kwargs):
        raise AssertionError("the whole sparse matrix was densified")

    monkeypatch.setattr(SparseRows, "__getitem__", recording)
    for cls in (sp.csr_matrix, sp.csr_array):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
    ae = AutoEncoder(n_components=3, **FAST).fit(X_sparse)
    # Two rows to check the new module's shapes, batch_size rows over 5 epochs,
    # and one batch for the end-of-training finiteness check.
    assert max(seen) == 16 and sum(seen) == 2 + 5 * 60 + 16
    seen.clear()
    # Inference batches are bounded by elements: 36 // 12 columns = 3 rows.
    monkeypatch.setattr(_inference, "INFERENCE_BATCH_ELEMENTS", 36)
    codes = ae.transform(X_sparse)
    assert max(seen) == 3 and sum(seen) == 60
    assert codes.shape == (60, 3) and np.isfinite(codes).all()


def test_hashing_vectorizer_columns_train_with_a_small_batch():
    texts = ["free prize call now", "see you at lunch", "win cash now", "lunch at noon?"] * 2
    X = HashingVectorizer(n_features=2**20).transform(texts)  # 8 x 1,048,576
    ae = AutoEncoder(n_components=2, hidden_layer_sizes=(), max_iter=2, batch_size=4)
    ae.set_params(random_state=0, device="cpu").fit(X)
    assert ae.n_features_in_ == 2**20
    codes = ae.transform(X)
    assert codes.shape == (8, 2) and np.isfinite(codes).all()
    # Same words, same hashed row, same code.
    np.testing.assert_array_equal(codes[:4], codes[4:])


# ------------------------------------------------------ scikit-learn tools

TEXTS = [
    "win a free prize now, call to claim",
    "free entry: text WIN to claim your cash prize",
    "urgent! your mobile won a cash award, call now",
    "claim your free ringtone, text now",
    "are we still on for lunch today?",
    "i'll be home late, see you tonight",
    "can you pick up milk on the way home",
    "ok see you at lunch then",
] * 3
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 3)


def test_pipeline_after_tfidf_vectorizer_transforms_text():
    pipe = make_pipeline(
        TfidfVectorizer(), AutoEncoder(n_components=2, **FAST), LogisticRegression()
    )
    pipe.fit(TEXTS, LABELS)
    codes = pipe[:2].transform(TEXTS)
    assert codes.shape == (24, 2) and np.isfinite(codes).all()
    assert pipe.predict(TEXTS).shape == (24,)


def test_cross_val_score_runs_every_fold_on_sparse_text():
    pipe = make_pipeline(
        TfidfVectorizer(), AutoEncoder(n_components=2, **FAST), LogisticRegression()
    )
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, TEXTS, LABELS, cv=cv, error_score="raise")
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


def test_anomaly_detector_passes_sparse_input_through(X_sparse):
    detector = AnomalyDetector(AutoEncoder(n_components=3, **FAST)).fit(X_sparse)
    dense = AnomalyDetector(AutoEncoder(n_components=3, **FAST)).fit(X_sparse.toarray())
    np.testing.assert_allclose(
        detector.decision_function(X_sparse), dense.decision_function(X_sparse.toarray()), atol=1e-5
    )
    assert set(detector.predict(X_sparse)) <= {-1, 1}


# ---------------------------------------------------------- tags and errors


@pytest.mark.parametrize("estimator", TABLE_FAMILIES, ids=lambda e: type(e).__name__)
def test_table_families_declare_sparse_input(estimator):
    assert get_tags(estimator).input_tags.sparse
    assert get_tags(AnomalyDetector(estimator)).input_tags.sparse


def test_recurrent_rejects_sparse_input_clearly(X_sparse):
    rae = RecurrentAutoEncoder(n_components=2, hidden_size=4, max_iter=1, device="cpu")
    assert not get_tags(rae).input_tags.sparse
    with pytest.raises(TypeError, match="does not accept sparse input"):
        rae.fit(X_sparse)
    with pytest.raises(TypeError, match="does not accept sparse input"):
        rae.fit([X_sparse[:5], X_sparse[5:12]])
    fitted = clone(rae).fit(X_sparse.toarray())
    with pytest.raises(TypeError, match="does not accept sparse input"):
        fitted.transform(X_sparse)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_sparse_input_with_non_finite_values_is_rejected(bad):
    X = sp.csr_matrix(np.array([[0.0, bad], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN|infinity"):
        AutoEncoder(n_components=1, **FAST).fit(X)


def test_bernoulli_range_is_checked_on_sparse_values(X_sparse):
    vae = VariationalAutoEncoder(n_components=2, likelihood="bernoulli", **FAST)
    X = X_sparse.copy()
    X.data[0] = 1.5
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\], got values in \[0, 1.5\]"):
        vae.fit(X)
    X.data[0] = -0.5
    with pytest.raises(ValueError, match=r"got values in \[-0.5, "):
        vae.fit(X)
