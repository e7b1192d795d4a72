"""Out-of-core fit: ChunkedData streams memmaps, chunk generators and Parquet row groups."""

import numpy as np
import pytest

from skae import AutoEncoder, ChunkedData, RecurrentAutoEncoder


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(2000, 2)) @ rng.normal(size=(2, 8))).astype(np.float32)


@pytest.fixture
def memmap(X, tmp_path):
    path = tmp_path / "X.f32"
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    out[:] = X
    out.flush()
    return np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)


def _mse(model, X):
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


PARAMS = dict(n_components=2, hidden_layer_sizes=(32,), batch_size=50, max_iter=8, tol=None)


def test_out_of_core_fit_on_memmap_matches_in_memory_fit(X, memmap):
    baseline = float(np.mean((X - X.mean(axis=0)) ** 2))
    full = AutoEncoder(random_state=0, **PARAMS).fit(X)
    data = ChunkedData(memmap, chunk_size=200, shuffle_window=3)
    streamed = AutoEncoder(random_state=0, **PARAMS).fit(data)
    assert streamed.n_iter_ == 8 and streamed.n_features_in_ == 8
    # Same epochs, same batch size, a windowed shuffle: the reconstruction
    # errors agree within 50% (seeds 0-4: 0.7x to 1.2x), and both are under
    # 1% of the variance.
    assert _mse(streamed, X) < 0.01 * baseline
    assert _mse(streamed, X) == pytest.approx(_mse(full, X), rel=0.5)
    # Every row is seen once per epoch: 2000 / 50 batches.
    assert streamed.history_[-1, "train_batch_count"] == 40


def test_chunked_fit_is_reproducible(memmap):
    def run():
        data = ChunkedData(memmap, chunk_size=300, shuffle_window=2)
        model = AutoEncoder(random_state=1, **{**PARAMS, "max_iter": 2})
        return model.fit(data).transform(memmap[:50])

    np.testing.assert_array_equal(run(), run())


def test_chunked_fit_from_generator_factory_with_uneven_chunks(X):
    def chunks():
        for start in range(0, len(X), 333):
            yield X[start : start + 333]

    ae = AutoEncoder(random_state=0, **{**PARAMS, "max_iter": 2})
    ae.fit(ChunkedData(chunks, shuffle_window=2))
    assert ae.n_iter_ == 2
    assert ae.history_[-1, "train_batch_count"] == 40  # full batches across chunk edges


def test_chunked_fit_reads_the_source_once_per_epoch_plus_the_first_chunk(X):
    passes = []

    def chunks():
        passes.append(1)
        return (X[i : i + 100] for i in range(0, len(X), 100))

    params = {**PARAMS, "max_iter": 3}
    AutoEncoder(random_state=0, device="cpu", **params).fit(ChunkedData(chunks))
    # One read of the first chunk for the input's shape, one pass per epoch; the
    # end-of-training checks reuse the first chunk already read.
    assert len(passes) == 1 + 3


def test_chunked_fit_rejects_a_bad_chunk_with_sklearn_message(X):
    def chunks():
        yield X[:100]
        yield X[100:200, :5]

    ae = AutoEncoder(random_state=0, **PARAMS)
    with pytest.raises(ValueError, match="X has 5 features, but AutoEncoder is expecting 8"):
        ae.fit(ChunkedData(chunks))
    assert not hasattr(ae, "net_")  # nothing half-fitted

    def with_nan():
        yield X[:100]
        yield np.full((10, 8), np.nan, dtype=np.float32)

    with pytest.raises(ValueError, match="NaN"):
        ae.fit(ChunkedData(with_nan))


def test_chunked_fit_rejects_early_stopping(memmap):
    ae = AutoEncoder(early_stopping=True, max_iter=2)
    with pytest.raises(ValueError, match="early_stopping=True .* ChunkedData"):
        ae.fit(ChunkedData(memmap))


@pytest.mark.parametrize(
    "source, kwargs, match",
    [
        (object(), {}, "ChunkedData takes an array-like"),
        (np.zeros((0, 3)), {}, "at least one row"),
        (np.zeros((5, 3)), {"chunk_size": 0}, "chunk_size must be a positive int"),
        (np.zeros((5, 3)), {"shuffle_window": 1.5}, "shuffle_window must be a positive int"),
    ],
)
def test_chunked_data_rejects_bad_arguments(source, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        ChunkedData(source, **kwargs)


def test_chunked_fit_of_variable_length_sequences_pads_within_a_window():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 2)).astype(np.float32) for n in rng.integers(3, 9, size=60)]

    def chunks():
        for start in range(0, 60, 20):
            yield seqs[start : start + 20]

    model = RecurrentAutoEncoder(2, hidden_size=8, max_iter=2, batch_size=16, random_state=0)
    model.fit(ChunkedData(chunks, shuffle_window=3))
    assert model.n_iter_ == 2
    assert np.all(np.isfinite(model.score_samples(seqs)))


def test_chunked_fit_from_parquet_row_groups(X, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "X.parquet"
    pq.write_table(pa.table({f"f{i}": X[:, i] for i in range(8)}), path, row_group_size=250)
    data = ChunkedData.from_parquet(path, shuffle_window=2)
    ae = AutoEncoder(random_state=0, **{**PARAMS, "max_iter": 3}).fit(data)
    assert ae.n_features_in_ == 8
    assert ae.history_[-1, "train_batch_count"] == 40  # all 8 row groups, every epoch
    baseline = float(np.mean((X - X.mean(axis=0)) ** 2))
    assert _mse(ae, X) < 0.05 * baseline
    with pytest.raises(ValueError, match="X has 8 features, but AutoEncoder is expecting 3"):
        AutoEncoder().fit(ChunkedData.from_parquet(path, columns=["f0", "f1", "f2"])).transform(X)
