"""Peak memory of ``score_samples`` on an input far larger than a batch.

The input is a float32 ``np.memmap`` on disk, so it never has to fit in RAM;
skae reads it one inference batch at a time. The script reports the peak
*anonymous* resident memory (RssAnon: what the process itself allocated, not
the file pages the kernel maps in and may drop at will) during scoring,
against the input's size.

Usage::

    python benchmarks/bench_memory.py                    # 2,000,000 x 784 (6.3 GB file)
    python benchmarks/bench_memory.py --rows 10000000    # 10M x 784 (31 GB file)
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from skae import AutoEncoder
from skae._base import INFERENCE_BATCH_ROWS


def rss_anon_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


class PeakSampler(threading.Thread):
    """Poll RssAnon every few milliseconds and keep the maximum."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = rss_anon_bytes()
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_anon_bytes())
            time.sleep(0.005)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--dir", default=None, help="where to write the memmap (default: tmp)")
    args = parser.parse_args(argv)
    gib = 1024**3

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "X.f32"
        X = np.memmap(path, dtype=np.float32, mode="w+", shape=(args.rows, args.features))
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for i in range(0, args.rows, 100_000):
            X[i : i + 100_000] = rng.random(
                (min(100_000, args.rows - i), args.features), np.float32
            )
        X.flush()
        print(f"wrote {X.nbytes / gib:.1f} GiB input in {time.perf_counter() - start:.0f}s")

        model = AutoEncoder(
            n_components=32, hidden_layer_sizes=(256,), max_iter=2, random_state=0, device="cpu"
        ).fit(np.asarray(X[:10_000]))
        X = np.memmap(path, dtype=np.float32, mode="r", shape=(args.rows, args.features))

        baseline = rss_anon_bytes()
        sampler = PeakSampler()
        sampler.start()
        start = time.perf_counter()
        scores = model.score_samples(X)
        seconds = time.perf_counter() - start
        peak = sampler.stop()

    batch_bytes = INFERENCE_BATCH_ROWS * args.features * 4
    print(f"rows x features        : {args.rows:,} x {args.features}")
    print(f"input size             : {args.rows * args.features * 4 / gib:.2f} GiB (memmap)")
    print(f"inference batch        : {INFERENCE_BATCH_ROWS:,} rows = {batch_bytes / 2**20:.0f} MiB")
    print(f"output size            : {scores.nbytes / 2**20:.0f} MiB")
    print(f"peak RssAnon - baseline: {(peak - baseline) / 2**20:.0f} MiB")
    print(f"scoring time           : {seconds:.1f}s ({args.rows / seconds:,.0f} rows/s)")
    print(f"all scores finite      : {bool(np.isfinite(scores).all())}")


if __name__ == "__main__":
    main()
