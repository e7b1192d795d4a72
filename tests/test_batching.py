"""Batches (skae._batching): SparseRows, split_rows and TensorBatchIterator; sparse input
trained and inferred one dense batch at a time, alike in scikit-learn's text tools."""

import numpy as np
import scipy.sparse as sp
import torch
from _settings import FAST_BATCHES
from sklearn.base import clone
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from skae import (
    AnomalyDetector,
    AutoEncoder,
    DenoisingAutoEncoder,
    _inference,
)
from skae._batching import SparseRows, TensorBatchIterator, split_rows

# --------------------------------------------------------------------------- SparseRows


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


# ------------------------------------------------------- batches on the training device


def test_batches_of_host_data_are_moved_to_the_training_device():
    X = torch.arange(20.0).reshape(10, 2)
    lengths = torch.arange(10)
    in_place = list(TensorBatchIterator((X,), 4, shuffle=False))
    assert all(batch.device == X.device for batch in in_place)
    # Streaming to another device ("meta": shapes and dtypes, no data) moves
    # every tensor of every batch and keeps the rows aligned.
    streamed = list(TensorBatchIterator((X, lengths), 4, shuffle=True, device="meta"))
    assert [len(x) for x, _ in streamed] == [4, 4, 2]
    assert all(x.is_meta and n.is_meta and n.dtype == torch.int64 for x, n in streamed)


# ------------------------------------------------------------ one dense batch at a time


def test_sparse_fit_with_early_stopping_matches_dense(X_sparse):
    ae = AutoEncoder(n_components=3, early_stopping=True, validation_fraction=0.2, **FAST_BATCHES)
    on_sparse = clone(ae).fit(X_sparse)
    on_dense = clone(ae).fit(X_sparse.toarray())
    np.testing.assert_allclose(on_sparse.validation_scores_, on_dense.validation_scores_, rtol=1e-5)


def test_denoising_data_range_is_read_from_sparse_input(X_sparse):
    dae = DenoisingAutoEncoder(n_components=3, noise="salt_pepper", **FAST_BATCHES).fit(X_sparse)
    np.testing.assert_array_equal(dae.data_max_, X_sparse.toarray().max(axis=0))
    np.testing.assert_array_equal(dae.data_min_, X_sparse.toarray().min(axis=0))
    assert dae.denoise(X_sparse).shape == (60, 12)


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
    ae = AutoEncoder(n_components=3, **FAST_BATCHES).fit(X_sparse)
    # Two rows to check the new module's shapes, one pass in batches for the mean
    # predictor's error, batch_size rows over 5 epochs, one batch for the
    # end-of-training finiteness check and one pass for the learned-nothing check.
    assert max(seen) == 16 and sum(seen) == 2 + 60 + 5 * 60 + 16 + 60
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


# ------------------------------------------------------------------- scikit-learn tools


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
        TfidfVectorizer(), AutoEncoder(n_components=2, **FAST_BATCHES), LogisticRegression()
    )
    pipe.fit(TEXTS, LABELS)
    codes = pipe[:2].transform(TEXTS)
    assert codes.shape == (24, 2) and np.isfinite(codes).all()
    assert pipe.predict(TEXTS).shape == (24,)


def test_cross_val_score_runs_every_fold_on_sparse_text():
    pipe = make_pipeline(
        TfidfVectorizer(), AutoEncoder(n_components=2, **FAST_BATCHES), LogisticRegression()
    )
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, TEXTS, LABELS, cv=cv, error_score="raise")
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


def test_anomaly_detector_passes_sparse_input_through(X_sparse):
    detector = AnomalyDetector(AutoEncoder(n_components=3, **FAST_BATCHES)).fit(X_sparse)
    dense = AnomalyDetector(AutoEncoder(n_components=3, **FAST_BATCHES)).fit(X_sparse.toarray())
    np.testing.assert_allclose(
        detector.decision_function(X_sparse), dense.decision_function(X_sparse.toarray()), atol=1e-5
    )
    assert set(detector.predict(X_sparse)) <= {-1, 1}


def test_sparse_rows_give_sparse_batches_equal_to_the_dense_rows(X_sparse):
    rows = SparseRows.from_scipy(X_sparse, "cpu")
    rows.sparse_batches = True
    order = torch.tensor([5, 4, 0, 59, 17, 5])
    batch = rows[order]
    assert batch.layout == torch.sparse_coo
    dense = X_sparse.toarray().astype(np.float32)
    np.testing.assert_array_equal(batch.to_dense().numpy(), dense[order.numpy()])
    part = rows.take(torch.tensor([17, 3, 40]))
    assert part.sparse_batches
    np.testing.assert_array_equal(part[:].to_dense().numpy(), dense[[17, 3, 40]])


def test_sparse_input_linear_multiplies_a_sparse_batch_as_its_dense_copy(X_sparse):
    from skae._modules import SparseInputLinear

    torch.manual_seed(0)
    layer = SparseInputLinear(12, 3)
    rows = SparseRows.from_scipy(X_sparse, "cpu")
    dense = rows[:]
    rows.sparse_batches = True
    grads = []
    for batch in (dense, rows[:]):
        layer.zero_grad()
        out = layer(batch)
        out.square().sum().backward()
        grads.append((out.detach().clone(), layer.weight.grad.clone(), layer.bias.grad.clone()))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_the_autoencoder_trains_on_sparse_batches(X_sparse):
    layouts = set()

    class Spy(AutoEncoder):
        def _loss(self, module, batch, training):
            layouts.add(batch.layout)
            return super()._loss(module, batch, training)

    Spy(3, **FAST_BATCHES).fit(X_sparse)
    assert layouts == {torch.sparse_coo}
    layouts.clear()
    # Under autocast the sparse product has no kernel: dense batches then.
    Spy(3, mixed_precision=True, **FAST_BATCHES).fit(X_sparse)
    assert layouts == {torch.strided}
