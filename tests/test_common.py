"""scikit-learn's own estimator checks over every public skae estimator."""

import _settings
from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import (
    AnomalyDetector,
    AutoEncoder,
    AutoEncoderEnsemble,
    DenoisingAutoEncoder,
    RecurrentAutoEncoder,
    SparseAutoEncoder,
    VariationalAutoEncoder,
)

# Small, quick settings: the checks fit dozens of times on tiny data.
FAST = {**_settings.FAST_16, "max_iter": 20}
FAST_RECURRENT = {**_settings.FAST_RNN, "hidden_size": 8, "max_iter": 20}

ESTIMATORS = [
    AutoEncoder(n_components=2, **FAST),
    VariationalAutoEncoder(n_components=2, **FAST),
    # The default detector as a user makes it: only a seed, nothing set inside.
    AnomalyDetector(random_state=0),
    AnomalyDetector(AutoEncoder(n_components=2, **FAST), random_state=0),
    AutoEncoderEnsemble(n_estimators=4, max_iter=20, random_state=0, device="cpu"),
    DenoisingAutoEncoder(n_components=2, **FAST),
    SparseAutoEncoder(n_components=2, **FAST),
    RecurrentAutoEncoder(n_components=2, **FAST_RECURRENT),
]

# Checks that cannot apply, with the reason. Empty unless a check truly cannot pass.
FLOAT32_BATCHING = (
    "computation runs in float32 and BLAS picks different kernels for different "
    "batch shapes, so results move in the last bit (~1e-7), above the check's atol"
)
WEIGHTS_DRAW_ROWS = (
    "sample_weight makes each epoch draw rows with replacement in proportion to the "
    "weights, so integer weights equal repeated rows in expectation, not draw for draw "
    "(as a stochastic fit can); tests/test_training.py checks the draws' frequencies"
)
WEIGHT_EQUIVALENCE = {
    "check_sample_weight_equivalence_on_dense_data": WEIGHTS_DRAW_ROWS,
    "check_sample_weight_equivalence_on_sparse_data": WEIGHTS_DRAW_ROWS,
}
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "AutoEncoder": {
        "check_methods_subset_invariance": FLOAT32_BATCHING,
        **WEIGHT_EQUIVALENCE,
    },
    "AnomalyDetector": {
        "check_methods_subset_invariance": FLOAT32_BATCHING,
        **WEIGHT_EQUIVALENCE,  # its estimators draw rows by weight
    },
    "DenoisingAutoEncoder": {
        "check_methods_subset_invariance": FLOAT32_BATCHING,
        **WEIGHT_EQUIVALENCE,
    },
    "AutoEncoderEnsemble": {
        "check_methods_subset_invariance": FLOAT32_BATCHING,
    },
    "VariationalAutoEncoder": WEIGHT_EQUIVALENCE,
    "SparseAutoEncoder": WEIGHT_EQUIVALENCE,
    "RecurrentAutoEncoder": WEIGHT_EQUIVALENCE,
}


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ------------------------------------------- the parameters families share


def test_every_family_shares_the_training_parameters_names_defaults_and_docs():
    import inspect

    from skae import (
        AutoEncoder,
        DenoisingAutoEncoder,
        RecurrentAutoEncoder,
        SparseAutoEncoder,
        VariationalAutoEncoder,
    )
    from skae._base import BaseAutoEncoder
    from skae._docstring import TRAINING_PARAMETERS

    shared = [line.split(" : ")[0] for line in TRAINING_PARAMETERS.splitlines() if " : " in line]
    assert shared[0] == "alpha" and shared[-1] == "compile" and len(shared) == 15
    base = inspect.signature(BaseAutoEncoder).parameters
    for family in (
        AutoEncoder,
        DenoisingAutoEncoder,
        SparseAutoEncoder,
        VariationalAutoEncoder,
        RecurrentAutoEncoder,
    ):
        params = inspect.signature(family).parameters
        for name in shared:
            assert params[name].default == base[name].default, (family.__name__, name)
        # The rendered docstring holds the shared block verbatim, in signature order.
        doc = inspect.cleandoc(family.__doc__)
        assert TRAINING_PARAMETERS.rstrip() in doc, family.__name__
        documented = [ln.split(" : ")[0] for ln in doc.splitlines() if " : " in ln]
        assert [p for p in params if p in documented] == [p for p in documented if p in params]
