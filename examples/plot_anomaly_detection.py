"""
=====================================================
Anomaly detection with an autoencoder, PCA and trees
=====================================================

:class:`~skae.AnomalyDetector` turns any estimator with ``score_samples``
(higher = more normal) into a scikit-learn outlier detector, with ``predict``,
``decision_function`` and a cutoff ``offset_``. Around an
:class:`~skae.AutoEncoder` the score is the negative reconstruction error, and
:meth:`~skae.AnomalyDetector.feature_errors` says which inputs were not
reconstructed. Here it finds unfamiliar digits among familiar ones, side by
side with PCA in the same wrapper and :class:`~sklearn.ensemble.IsolationForest`.
"""

# %%
# Data: digits 0 to 4 are normal, sevens are anomalies
# ----------------------------------------------------
# From scikit-learn's 8x8 digits, the 0s to 4s are the normal data. The
# training set is unlabelled and contaminated: 60% of the normal digits plus
# sevens amounting to 5% of them. The test set holds the other 40% of the
# normal digits and 60 sevens the detectors have not seen.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AnomalyDetector, AutoEncoder

X, y = load_digits(return_X_y=True)
rng = np.random.RandomState(0)
normal_train, normal_test, _, y_normal_test = train_test_split(
    X[y < 5], y[y < 5], test_size=0.4, random_state=0
)
sevens = X[y == 7][rng.permutation(np.sum(y == 7))]
n_contamination = int(0.05 * len(normal_train))
X_train = np.vstack([normal_train, sevens[:n_contamination]])
X_test = np.vstack([normal_test, sevens[n_contamination : n_contamination + 60]])
digit_test = np.r_[y_normal_test, np.full(len(X_test) - len(normal_test), 7)]
is_anomaly = (digit_test == 7).astype(int)
print(
    f"training: {len(normal_train)} normal digits + {n_contamination} sevens (unlabelled); "
    f"test: {len(normal_test)} normal + {int(is_anomaly.sum())} sevens"
)

# %%
# Three detectors in pipelines
# ----------------------------
# Each pipeline scales the pixels to [0, 1] first. The autoencoder and PCA
# both keep 4 numbers per digit: a code too small to copy every input, so
# digits unlike the bulk of the training data reconstruct badly.
# ``contamination="auto"`` (the default) puts the cutoff at Tukey's lower
# fence of the training scores.
detectors = {
    "AutoEncoder": make_pipeline(
        MinMaxScaler(),
        AnomalyDetector(AutoEncoder(n_components=4, max_iter=100, tol=None, random_state=0)),
    ),
    "PCA": make_pipeline(MinMaxScaler(), AnomalyDetector(PCA(n_components=4, random_state=0))),
    "IsolationForest": make_pipeline(MinMaxScaler(), IsolationForest(random_state=0)),
}
anomaly_scores, aucs = {}, {}
for name, detector in detectors.items():
    detector.fit(X_train)
    # score_samples is higher for normal samples; ROC AUC wants the opposite.
    anomaly_scores[name] = -detector.score_samples(X_test)
    aucs[name] = auc = roc_auc_score(is_anomaly, anomaly_scores[name])
    flagged = detector.predict(X_test) == -1
    print(
        f"{name:>15}: ROC AUC {auc:.3f}; predict flags {flagged.sum()} test digits, "
        f"{int(is_anomaly[flagged].sum())} of them sevens"
    )

# %%
# ROC curves
# ----------
# The ROC curve ranks the test digits by each detector's score, whatever the
# cutoff: the higher and the further left, the better.
fig, ax = plt.subplots(figsize=(5.2, 4.6))
for name, scores in anomaly_scores.items():
    fpr, tpr, _ = roc_curve(is_anomaly, scores)
    ax.plot(fpr, tpr, label=f"{name} (AUC {aucs[name]:.3f})")
ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="chance")
ax.set_xlabel("false positive rate (normal digits flagged)")
ax.set_ylabel("true positive rate (sevens flagged)")
ax.set_title(
    "Sevens among digits 0-4, ROC AUC:\n"
    + ", ".join(f"{name} {auc:.2f}" for name, auc in aucs.items()),
    fontsize=9,
)
ax.legend(loc="lower right")
fig.tight_layout()

# %%
# Which pixels made a digit anomalous
# -----------------------------------
# ``feature_errors`` works in the space the autoencoder was fitted in, so the
# test digits go through the pipeline's scaler first (``pipeline[:-1]``). For
# the four test digits the autoencoder scores as most anomalous, the figure
# shows the digit, its reconstruction from 4 numbers and the squared error of
# each pixel: the strokes the model could not reproduce.
pipeline = detectors["AutoEncoder"]
detector = pipeline[-1]
S_test = pipeline[:-1].transform(X_test)
most_anomalous = np.argsort(detector.score_samples(S_test))[:4]
errors = detector.feature_errors(S_test[most_anomalous])
reconstructions = detector.estimator_.inverse_transform(
    detector.estimator_.transform(S_test[most_anomalous])
)

fig, axes = plt.subplots(3, len(most_anomalous), figsize=(len(most_anomalous) * 1.7, 5.4))
for c, i in enumerate(most_anomalous):
    panels = (S_test[i], reconstructions[c], errors[c])
    for r, (image, cmap, vmax) in enumerate(
        zip(panels, ("gray_r", "gray_r", "Reds"), (1, 1, None), strict=True)
    ):
        axes[r, c].imshow(image.reshape(8, 8), cmap=cmap, vmin=0, vmax=vmax)
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    kind = "anomaly" if is_anomaly[i] else "normal"
    axes[0, c].set_title(f"a {digit_test[i]} ({kind})\nerror {errors[c].mean():.3f}", fontsize=9)
for r, name in enumerate(("digit", "reconstruction", "squared error\nper pixel")):
    axes[r, 0].set_ylabel(name, fontsize=9)
fig.suptitle(
    f"The 4 digits the autoencoder finds most anomalous (cutoff: error {-detector.offset_:.3f})",
    fontsize=10,
)
fig.tight_layout()

# %%
# Conclusion
# ----------
# On this problem the autoencoder ranks the sevens best: in the run printed
# above its ROC AUC is 0.878, against 0.717 for PCA with the same 4 numbers
# per digit and 0.712 for IsolationForest. Its ``contamination="auto"``
# cutoff is strict: it flags 16 test digits, 8 of them sevens, so it finds
# only 8 of the 60 sevens; set ``contamination`` to flag more when the
# anomaly rate is known. (IsolationForest's ``predict`` uses its own cutoff
# and flags 112 digits, 30 of them sevens.) Three of the four test digits
# scored most anomalous are not sevens but unusual normal digits (a 1 with a
# long horizontal stroke, two 4s): a detector finds what is rare in its
# training data, whatever the labels say. ``feature_errors`` shows why each
# was flagged, pointing at the pixels the model could not reproduce: the 1's
# stroke, the top right corner of the 4s, the 7's top bar.
#
# This is one problem, not a benchmark: with other digits as anomalies the
# ranking changes. In trials while writing this example, with eights or
# nines as the anomalies PCA with 8 components did as well as the 4-number
# autoencoder or better; with one digit as the anomaly among all nine others,
# the autoencoder was the worst of the three on zeros and fours (AUC 0.28 and
# 0.64, where IsolationForest reached 0.69 and 0.83).
# ``benchmarks/bench_anomaly.py`` compares the detectors on the tabular
# ADBench sets.
