"""Denoising photos: a patch DenoisingAutoEncoder against scikit-image's denoisers.

Grey photos in [0, 1] get Gaussian noise of standard deviation 15, 25 and
50 (out of 255), not clipped. Every method is told the noise level, and
nothing is tuned on the test photos:

* skae: ``DenoisingAutoEncoder(256, architecture=PatchMLP(hidden_layer_sizes=(1024,)),
  noise_level=sigma)`` (12x12 windows, the window mean kept out of the
  network, one hidden layer of 1024 units each side), trained for
  ``EPOCHS`` (5) epochs on the 12x12 windows at a step of 3 pixels of the
  *training* photos, each window also flipped upside down, transposed and
  rotated by 90 degrees, then ``denoise(noisy_photo, stride=2,
  weights="gaussian")`` on whole photos (windows at a step of 2, averaged
  per pixel with more weight at each window's centre);
* non-local means (``skimage.restoration.denoise_nl_means``) with the
  settings of scikit-image's own gallery example (``h=0.8 * sigma``,
  ``sigma=sigma``, ``fast_mode=True``, 5x5 patches, search distance 6);
* total variation (``denoise_tv_chambolle``), its weight picked per noise
  level from ``TV_WEIGHTS * sigma`` on two training photos;
* wavelet thresholding (``denoise_wavelet``, BayesShrink, soft, told sigma;
  needs PyWavelets);
* PCA on 8x8 windows (each minus its mean), fitted on clean training
  windows, its number of components picked per noise level on two
  training photos, every window of the noisy photo projected and the
  projections averaged per pixel.

Training photos: scikit-image's ``astronaut``, ``chelsea``, ``coffee`` and
``rocket`` in grey, and its grey textures ``brick``, ``grass`` and
``gravel``. Test photos, never seen in training or tuning: scikit-image's
``camera``, ``coins``, ``moon``, ``clock``, ``page`` and ``text``, then
photos scikit-image does not ship: scikit-learn's ``china.jpg`` and
``flower.jpg`` and Matplotlib's ``grace_hopper.jpg``, in grey.

Prints PSNR (peak 1, in dB) per photo and the mean over each test set, and
the time of every method. Needs the ``bench`` extra (scikit-image,
PyWavelets).

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_denoising_photos.py
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_denoising_photos.py --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from _harness import markdown_table, psnr
from sklearn.decomposition import PCA
from sklearn.feature_extraction.image import extract_patches_2d, reconstruct_from_patches_2d

from skae import DenoisingAutoEncoder
from skae.architectures import PatchMLP

NOISE_LEVELS = (15, 25, 50)  # out of 255
TRAIN = ("astronaut", "chelsea", "coffee", "rocket", "brick", "grass", "gravel")
TUNE = ("astronaut", "brick")  # where TV's weight and PCA's size are picked
TEST = ("camera", "coins", "moon", "clock", "page", "text")
PATCH = 12  # the autoencoder's windows
TRAIN_STEP = 3  # between training windows
STEP = 2  # between windows in denoise
EPOCHS = 5
HIDDEN = 1024  # the PatchMLP's hidden layer, each side
TV_WEIGHTS = (0.5, 0.75, 1.0, 1.5, 2.0)  # times sigma
PCA_PATCH = 8
PCA_SIZES = (2, 4, 8, 12, 16, 24, 32)


def grey(image) -> np.ndarray:
    from skimage import color

    image = np.asarray(image)
    if image.ndim == 3:
        return color.rgb2gray(image[..., :3]).astype(np.float64)
    return image.astype(np.float64) / 255.0


def skimage_photos(names) -> dict:
    from skimage import data

    return {name: grey(getattr(data, name)()) for name in names}


def other_photos() -> dict:
    """Photos scikit-image does not ship, from other installed packages."""
    import matplotlib
    from PIL import Image
    from sklearn.datasets import load_sample_images

    samples = load_sample_images()
    photos = {
        Path(f).name: grey(im) for f, im in zip(samples.filenames, samples.images, strict=True)
    }
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.exists():
        photos[hopper.name] = grey(np.asarray(Image.open(hopper)))
    return photos


def add_noise(photos: dict, sigma: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {name: x + rng.normal(scale=sigma, size=x.shape) for name, x in photos.items()}


# ------------------------------------------------------------- baselines


def nl_means(noisy, sigma):
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(
        noisy, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6
    )


def tv(noisy, factor, sigma):
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(noisy, weight=factor * sigma)


def wavelet(noisy, sigma):
    from skimage.restoration import denoise_wavelet

    return denoise_wavelet(
        noisy, sigma=sigma, method="BayesShrink", mode="soft", rescale_sigma=True
    )


class PatchPCA:
    """PCA on mean-free windows: project every noisy window, average per pixel."""

    def __init__(self, train_photos, seed=0):
        windows = np.concatenate(
            [
                extract_patches_2d(x, (PCA_PATCH, PCA_PATCH), max_patches=20000, random_state=seed)
                for x in train_photos
            ]
        ).reshape(-1, PCA_PATCH**2)
        self.pca = PCA().fit(windows - windows.mean(axis=1, keepdims=True))

    def __call__(self, noisy, k):
        windows = extract_patches_2d(noisy, (PCA_PATCH, PCA_PATCH)).reshape(-1, PCA_PATCH**2)
        means = windows.mean(axis=1, keepdims=True)
        basis = self.pca.components_[:k]
        centred = windows - means - self.pca.mean_
        rec = centred @ basis.T @ basis + self.pca.mean_ + means
        return reconstruct_from_patches_2d(rec.reshape(-1, PCA_PATCH, PCA_PATCH), noisy.shape)


def pick(fn, options, clean: dict, noisy: dict):
    """The option of ``fn(noisy, option)`` with the best mean PSNR on ``clean``."""
    scores = {o: np.mean([psnr(clean[n], fn(noisy[n], o)) for n in clean]) for o in options}
    return max(scores, key=scores.get)


# ----------------------------------------------------------------- skae


def training_windows(photos, step, augment=True) -> np.ndarray:
    """Every PATCH x PATCH window at a step of ``step`` pixels, float32.

    ``augment``: each window also flipped upside down, transposed, and
    rotated by 90 degrees (four times the windows; a photo's content has no
    preferred orientation).
    """
    windows = np.concatenate(
        [
            np.lib.stride_tricks.sliding_window_view(x, (PATCH, PATCH))[::step, ::step].reshape(
                -1, PATCH, PATCH
            )
            for x in photos
        ]
    )
    if augment:
        turns = [
            windows[:, ::-1],
            windows.transpose(0, 2, 1),
            windows[:, :, ::-1].transpose(0, 2, 1),
        ]
        windows = np.concatenate([windows, *turns])
    return windows.astype(np.float32)


def patch_denoiser(sigma, epochs, hidden=HIDDEN, seed=0) -> DenoisingAutoEncoder:
    """The recipe: see the module docstring."""
    return DenoisingAutoEncoder(
        256,
        architecture=PatchMLP(hidden_layer_sizes=(hidden,)),
        noise_level=sigma,
        max_iter=epochs,
        tol=None,
        batch_size=256,
        random_state=seed,
        device="cpu",
    )


# ----------------------------------------------------------------- main


def denoisers(sigma, tv_factor, pca, pca_k, dae) -> dict:
    """Every method at one noise level, as functions of the noisy photo."""
    return {
        "noisy": lambda y: y,
        "non-local means": lambda y: nl_means(y, sigma),
        f"TV (weight {tv_factor:g} sigma)": lambda y: tv(y, tv_factor, sigma),
        "wavelet (BayesShrink)": lambda y: wavelet(y, sigma),
        f"PCA on 8x8 windows (k={pca_k})": lambda y: pca(y, pca_k),
        "skae PatchMLP DAE": lambda y: dae.denoise(y[None], stride=STEP, weights="gaussian")[0],
    }


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch, 2 test photos")
    parser.add_argument("--levels", type=int, nargs="+", default=list(NOISE_LEVELS))
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs")
    parser.add_argument(
        "--train-step", type=int, default=TRAIN_STEP, help="step between training windows"
    )
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="PatchMLP hidden layer width")
    parser.add_argument(
        "--no-augment", action="store_true", help="no flipped or rotated training windows"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    train = skimage_photos(TRAIN)
    test_sets = {"scikit-image (held out)": skimage_photos(TEST), "other packages": other_photos()}
    if args.quick:
        test_sets = {k: dict(list(v.items())[:2]) for k, v in test_sets.items()}
    epochs = 1 if args.quick else args.epochs
    windows = training_windows(train.values(), args.train_step, augment=not args.no_augment)
    tune = {n: train[n] for n in TUNE}
    pca = PatchPCA(list(train.values()))
    print(f"{len(windows)} training windows of {PATCH}x{PATCH} from {len(train)} photos")

    summary, per_photo, timing = [], [], []
    for level in args.levels:
        sigma = level / 255
        tune_noisy = add_noise(tune, sigma, seed=1000 + level)
        tv_factor = pick(partial(tv, sigma=sigma), TV_WEIGHTS, tune, tune_noisy)
        pca_k = pick(pca, PCA_SIZES, tune, tune_noisy)
        dae, fit_s = timed(patch_denoiser(sigma, epochs, args.hidden).fit, windows)
        methods = denoisers(sigma, tv_factor, pca, pca_k, dae)
        timing.append(
            [
                level,
                "skae PatchMLP DAE fit",
                f"{fit_s:.0f} s",
                f"{epochs} epochs, {len(windows)} windows",
            ]
        )
        for set_name, photos in test_sets.items():
            noisy = add_noise(photos, sigma, seed=level)
            scores = {m: [] for m in methods}
            for name, clean in photos.items():
                row = [level, set_name, name]
                for method, fn in methods.items():
                    out, seconds = timed(fn, noisy[name])
                    scores[method].append(psnr(clean, out))
                    row.append(f"{scores[method][-1]:.2f}")
                    if set_name.startswith("scikit") and name == "camera":
                        timing.append([level, method, f"{seconds:.2f} s", "camera, 512x512"])
                per_photo.append(row)
                print(" ".join(map(str, row)), flush=True)
            best = max((m for m in methods if m != "noisy"), key=lambda m: np.mean(scores[m]))
            for method, values in scores.items():
                mark = "**" if method == best else ""
                summary.append([level, set_name, method, f"{mark}{np.mean(values):.2f}{mark}"])

    print()
    print(markdown_table(["noise std (/255)", "test photos", "method", "mean PSNR (dB)"], summary))
    print()
    names = ["noisy", "NL-means", "TV", "wavelet", "PCA", "skae"]
    print(markdown_table(["noise std", "set", "photo", *names], per_photo))
    print()
    print(markdown_table(["noise std", "what", "time", "note"], timing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
