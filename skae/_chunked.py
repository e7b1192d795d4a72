"""Training data read one chunk at a time: ``fit`` on data larger than memory.

:class:`ChunkedData` wraps a source of row chunks (an array or memmap read in
slices, a function that yields arrays, or the row groups of a Parquet file).
``fit`` checks each chunk as it arrives, gathers ``shuffle_window`` chunks in
host memory, shuffles their rows together, and feeds mini-batches to the
training device; so memory holds about one window, never the whole input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch


class ChunkedData:
    """Training data streamed in chunks, for ``fit`` on data larger than memory.

    Pass it to ``fit`` of any skae estimator in place of ``X``. Each epoch
    reads the source once, a chunk at a time; ``shuffle_window`` chunks are
    held together and their rows shuffled, so memory stays at about two
    windows (the chunks and their concatenation), whatever the source's size.
    Every chunk is validated as ``fit`` validates an array (finite values, the
    feature count of the first chunk).

    How close to a full shuffle: a mini-batch is drawn from one window, i.e.
    from ``shuffle_window`` chunks. Sources read by index (arrays, memmaps,
    Parquet row groups) are read in a fresh random chunk order at each epoch,
    so a window is a random subset of chunks and, when rows are not sorted,
    batches are as varied as under a full shuffle. If the rows are sorted (by
    class, by time), a batch sees only ``shuffle_window * chunk_size`` adjacent
    rows: use many small chunks and a large window, or shuffle the file once
    beforehand. A callable source is read in its own order.

    Parameters
    ----------
    source : array-like, numpy.memmap or callable
        An object with ``shape`` and row slicing (an ndarray, a
        :class:`numpy.memmap`, an HDF5 or zarr array), read in slices of
        ``chunk_size`` rows; or a function taking no argument that returns
        an iterable of arrays (e.g. a generator), called once per epoch.
        See :meth:`from_parquet` for Parquet files.
    chunk_size : int, default=10_000
        Rows per chunk for array sources (a callable's chunks are used as
        they come).
    shuffle_window : int, default=10
        Chunks whose rows are shuffled together; ``1`` shuffles within each
        chunk only.
    shuffle : bool, default=True
        Whether to shuffle the chunk order (array and Parquet sources) and
        the rows within a window.

    See Also
    --------
    skae.AutoEncoder.partial_fit : Train on chunks that you feed yourself.

    Notes
    -----
    ``early_stopping=True`` needs a validation set held in memory and is
    rejected with chunked data. Values that a family derives from the whole
    training set (the value range of salt-and-pepper noise) come from the
    first chunk.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoEncoder, ChunkedData
    >>> X = np.random.default_rng(0).normal(size=(1000, 6)).astype(np.float32)
    >>> data = ChunkedData(X, chunk_size=100, shuffle_window=4)
    >>> ae = AutoEncoder(n_components=2, max_iter=3, random_state=0).fit(data)
    >>> ae.n_features_in_, ae.n_iter_
    (6, 3)
    """

    def __init__(
        self,
        source,
        *,
        chunk_size: int = 10_000,
        shuffle_window: int = 10,
        shuffle: bool = True,
    ):
        for name, value in (("chunk_size", chunk_size), ("shuffle_window", shuffle_window)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if isinstance(source, _ParquetSource):
            self._read = source
        elif callable(source):
            self._read = _CallableSource(source)
        elif hasattr(source, "shape") and hasattr(source, "__getitem__"):
            if len(source.shape) < 2 or source.shape[0] == 0:
                raise ValueError(
                    f"ChunkedData needs an array source with at least one row and two "
                    f"dimensions; got shape {tuple(source.shape)}."
                )
            self._read = _ArraySource(source, int(chunk_size))
        else:
            raise TypeError(
                "ChunkedData takes an array-like with a shape (ndarray, np.memmap, "
                "HDF5/zarr array) or a function returning an iterable of arrays; got "
                f"{type(source).__name__}."
            )
        self.source = source
        self.chunk_size = chunk_size
        self.shuffle_window = shuffle_window
        self.shuffle = shuffle

    @classmethod
    def from_parquet(cls, path, *, columns=None, shuffle_window: int = 10, shuffle: bool = True):
        """Stream the row groups of a Parquet file (read with pyarrow).

        Each row group is a chunk; the selected columns (all by default) must
        be numeric and become the features, in order.

        Parameters
        ----------
        path : str or path-like
            The Parquet file.
        columns : list of str or None, default=None
            Columns to read; None reads all.
        shuffle_window : int, default=10
            Row groups whose rows are shuffled together.
        shuffle : bool, default=True
            Whether to shuffle the row-group order and the rows of a window.

        Returns
        -------
        data : ChunkedData
            Data to pass to ``fit``.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> pq = __import__("pytest").importorskip("pyarrow.parquet")
        >>> import pyarrow as pa
        >>> from skae import AutoEncoder, ChunkedData
        >>> X = np.random.default_rng(0).normal(size=(300, 3))
        >>> path = os.path.join(tempfile.mkdtemp(), "x.parquet")
        >>> pq.write_table(pa.table({f"x{i}": X[:, i] for i in range(3)}), path, row_group_size=100)
        >>> data = ChunkedData.from_parquet(path)
        >>> AutoEncoder(n_components=2, max_iter=2, random_state=0).fit(data).n_features_in_
        3
        """
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ImportError(
                "ChunkedData.from_parquet needs pyarrow: pip install skae[parquet]"
            ) from exc
        source = _ParquetSource(pq.ParquetFile(path), columns)
        return cls(source, shuffle_window=shuffle_window, shuffle=shuffle)

    def first_chunk(self):
        """The source's first chunk, from which ``fit`` records the input's shape."""
        for chunk in self._read.chunks(None):
            return chunk
        raise ValueError("ChunkedData's source yielded no chunk; expected at least one.")

    def _in_order(self):
        """One pass over the source's chunks in their own order, unshuffled."""
        return self._read.chunks(None)

    def _stream(self, check: Callable, first: tuple) -> ChunkStream:
        return ChunkStream(self, check, first)

    def __repr__(self) -> str:
        return (
            f"ChunkedData({type(self.source).__name__}, chunk_size={self.chunk_size}, "
            f"shuffle_window={self.shuffle_window}, shuffle={self.shuffle})"
        )


class _ArraySource:
    """Slices of ``chunk_size`` rows of an array, in random order when asked."""

    def __init__(self, array, chunk_size: int):
        self.array = array
        self.starts = range(0, array.shape[0], chunk_size)
        self.chunk_size = chunk_size

    def chunks(self, rng):
        order = self.starts if rng is None else rng.permutation(self.starts)
        for start in order:
            yield np.asarray(self.array[start : start + self.chunk_size])


class _CallableSource:
    def __init__(self, factory):
        self.factory = factory

    def chunks(self, rng):
        chunks = self.factory()
        if not isinstance(chunks, Iterable):
            raise TypeError(
                "ChunkedData's source function must return an iterable of arrays; "
                f"it returned {type(chunks).__name__}."
            )
        yield from chunks


class _ParquetSource:
    """The row groups of a Parquet file, each as a 2-D array."""

    def __init__(self, parquet_file, columns):
        self.file = parquet_file
        self.columns = columns

    def chunks(self, rng):
        groups = range(self.file.num_row_groups)
        for i in groups if rng is None else rng.permutation(groups):
            table = self.file.read_row_group(int(i), columns=self.columns)
            yield np.column_stack([col.to_numpy() for col in table.columns])


def _concat(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Concatenate validated chunks; variable-length sequences are padded to the longest."""
    if all(len(p) == 1 for p in parts) and len({p[0].shape[1:] for p in parts}) == 1:
        return (np.concatenate([p[0] for p in parts]),)
    width = max(p[0].shape[1] for p in parts)
    padded, lengths = [], []
    for p in parts:
        X = p[0]
        pad = [(0, 0), (0, width - X.shape[1])] + [(0, 0)] * (X.ndim - 2)
        padded.append(np.pad(X, pad))
        lengths.append(p[1] if len(p) == 2 else np.full(len(X), X.shape[1], dtype=np.int64))
    return np.concatenate(padded), np.concatenate(lengths)


class ChunkStream:
    """What the skorch net iterates over: one pass over the chunks per epoch.

    Batches are gathered on the host from a shuffled window and copied to
    the training device. Shuffling draws from torch's global generator (seeded by
    ``fit``), so a seeded fit is reproducible. ``first`` holds the checked
    arrays of the first chunk, which ``fit`` read to record the input; the
    end-of-training checks look at them rather than read the source again.
    """

    def __init__(self, data: ChunkedData, check: Callable, first: tuple):
        self.data = data
        self.check = check
        self.first = first

    def iterator(self, batch_size: int, training: bool, device) -> _ChunkBatches:
        return _ChunkBatches(self, batch_size, training and self.data.shuffle, device)


class _ChunkBatches:
    def __init__(self, stream: ChunkStream, batch_size: int, shuffle: bool, device):
        self.stream = stream
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = torch.device(device)
        self.n_batches = 0

    def __len__(self) -> int:
        # Known once a pass has run; the net reads it after the epoch.
        return self.n_batches

    def __iter__(self):
        data = self.stream.data
        rng = None
        if self.shuffle:
            rng = np.random.default_rng(int(torch.randint(2**31 - 1, ()).item()))
        self.n_batches = 0
        window, leftover = [], None
        for chunk in data._read.chunks(rng):
            window.append(tuple(self.stream.check(chunk)))
            if len(window) == data.shuffle_window:
                leftover = yield from self._emit(window, leftover, last=False)
                window = []
        yield from self._emit(window, leftover, last=True)

    def _emit(self, window, leftover, last: bool):
        parts = window if leftover is None else [leftover, *window]
        if not parts:
            return None
        arrays = _concat(parts)
        window.clear()
        n = len(arrays[0])
        order = torch.randperm(n).numpy() if self.shuffle else np.arange(n)
        # Rows short of a full batch wait for the next window, so that every
        # batch but the epoch's last has batch_size rows.
        stop = n if last else n - n % self.batch_size
        for start in range(0, stop, self.batch_size):
            rows = order[start : min(start + self.batch_size, stop)]
            batch = tuple(self._to_device(a[rows]) for a in arrays)
            self.n_batches += 1
            yield batch[0] if len(batch) == 1 else batch
        return None if stop == n else tuple(a[order[stop:]] for a in arrays)

    def _to_device(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        if t.is_floating_point():
            t = t.to(torch.float32)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)


def row_draws(rng: np.random.RandomState) -> np.random.Generator:
    """A NumPy ``Generator`` seeded from ``rng``, for drawing rows without replacement.

    Its ``choice(n, k, replace=False)`` costs O(k), where RandomState's
    permutes all ``n`` rows (32 draws of 256 rows from a million: under 1 ms
    against about 1 s). One seed is taken from ``rng``, so a ``random_state``
    still fixes every draw.
    """
    return np.random.default_rng(rng.randint(np.iinfo(np.int32).max))


def reservoir_sample(data: ChunkedData, capacity: int, rng, read) -> tuple:
    """One pass over ``data``: ``(rows, their row numbers, n_samples)``.

    ``read(chunk, first)`` checks a chunk and returns it as a dense array.
    Up to ``capacity`` rows are kept, a uniform sample without replacement
    (Vitter's Algorithm R, seeded by ``rng``, which it draws from only once the
    reservoir is full). With no more rows than that, all are kept in order and
    the row numbers are None.
    """
    parts, kept, ids, seen = [], None, None, 0
    for chunk in data._in_order():
        chunk = read(chunk, seen == 0)
        fill = max(0, min(len(chunk), capacity - seen)) if kept is None else 0
        if fill:
            parts.append(chunk[:fill])
        rest = chunk[fill:]
        if len(rest):
            if kept is None:
                kept, ids, parts = np.concatenate(parts), np.arange(capacity), None
            numbers = np.arange(seen + fill, seen + len(chunk), dtype=np.int64)
            slots = rng.randint(0, numbers + 1, dtype=np.int64)
            hit = np.flatnonzero(slots < capacity)
            # Row i replaces slot j with probability capacity / (i + 1); a later
            # row drawing the same slot replaces the earlier one.
            _, last = np.unique(slots[hit][::-1], return_index=True)
            hit = hit[len(hit) - 1 - last]
            kept[slots[hit]] = rest[hit]
            ids[slots[hit]] = numbers[hit]
        seen += len(chunk)
    if seen == 0:
        raise ValueError("ChunkedData's source yielded no chunk; expected at least one.")
    if kept is None:
        return np.concatenate(parts), None, seen
    return kept, ids, seen
