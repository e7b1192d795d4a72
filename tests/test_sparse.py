"""The SparseAutoEncoder family (skae.sparse): top-k codes, L1 and KL sparsity, parameter checks."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler

from skae import AutoEncoder, SparseAutoEncoder

# An overcomplete code: 32 code units for 10 features.
FAST = dict(
    n_components=32, hidden_layer_sizes=(16,), batch_size=50, max_iter=30, tol=None, device="cpu"
)


@pytest.fixture
def X():
    return np.random.RandomState(0).normal(size=(300, 10))


@pytest.mark.filterwarnings("ignore:.*code units")  # dead top-k units warn
@pytest.mark.parametrize("k", [1, 5])
def test_topk_codes_keep_the_k_largest_entries_per_row(X, k):
    model = SparseAutoEncoder(sparsity="topk", k=k, random_state=0, **FAST)
    codes = model.fit_transform(X)
    np.testing.assert_array_equal((codes != 0).sum(axis=1), k)
    np.testing.assert_array_equal((model.transform(X) != 0).sum(axis=1), k)
    with torch.no_grad():
        dense = model.module_.net.encode(torch.tensor(X, dtype=torch.float32)).numpy()
    kth_largest = np.sort(dense, axis=1)[:, -k]
    kept = codes != 0
    np.testing.assert_allclose(codes[kept], dense[kept], rtol=1e-5, atol=1e-6)
    assert np.all(dense[kept] >= np.repeat(kth_largest, k))
    # Reconstructions decode the sparse codes, not the dense ones.
    np.testing.assert_allclose(
        -model.score_samples(X), ((model.inverse_transform(codes) - X) ** 2).mean(1), rtol=1e-4
    )


def test_sparse_defaults_keep_code_units_alive_on_minmax_digits():
    X = MinMaxScaler().fit_transform(load_digits().data[::3])
    codes = SparseAutoEncoder(random_state=0, max_iter=60, device="cpu").fit_transform(X)
    # With the old default (sparsity_weight=0.1) every unit died on this data.
    assert (codes != 0).any(axis=0).sum() >= 4


@pytest.fixture(scope="module")
def minmax_digits():
    return MinMaxScaler().fit_transform(load_digits().data)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_l1_code_keeps_every_unit_alive_on_minmax_digits(minmax_digits, seed):
    # Issue 20: with 4 units, seeds 0 and 2 ended with 1 and 2 dead units (0 on
    # every row; they die in the first epochs, even with no penalty) before
    # dead units were revived.
    model = SparseAutoEncoder(4, max_iter=20, tol=None, random_state=seed, device="cpu")
    codes = model.fit_transform(minmax_digits)
    assert (codes != 0).any(axis=0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_topk_code_keeps_nearly_every_unit_alive_on_minmax_digits(minmax_digits, seed):
    # Before dead units were revived: 8 and 9 of the 16 units dead after 40 epochs.
    model = SparseAutoEncoder(
        16, sparsity="topk", max_iter=40, tol=None, random_state=seed, device="cpu"
    )
    codes = model.fit_transform(minmax_digits)
    assert (codes == 0).all(axis=0).sum() <= 1  # measured: 0 and 1


@pytest.mark.filterwarnings("ignore:.*code units")
def test_revival_changes_gradients_only_and_only_of_dead_units():
    torch.manual_seed(0)
    model = SparseAutoEncoder(4, hidden_layer_sizes=(), max_iter=1, random_state=0)
    model.fit(np.random.RandomState(0).normal(size=(20, 3)))
    module = model.module_
    with torch.no_grad():
        module.net.encoder[-1].bias[:2] = -100.0  # units 0 and 1: 0 on every row
    x = torch.randn(20, 3)
    module.silent_rows.zero_()
    module.revived.zero_()
    code, revival = module.training_code(x)
    assert float(revival.detach()) == 0.0  # nobody dead yet: silent for less than an epoch
    code, revival = module.training_code(x)  # 40 silent rows > revive_after=20
    assert float(revival.detach()) == 0.0  # the value is 0, the gradient is not
    torch.testing.assert_close(code, module.encode(x))
    module.zero_grad()
    revival.backward()
    # d/db of -(the unit's largest w.x + b over the rows) / n_components, for each dead unit.
    bias_grad = module.net.encoder[-1].bias.grad
    torch.testing.assert_close(bias_grad, torch.tensor([-0.25, -0.25, 0.0, 0.0]))


def test_dead_units_warn_with_their_number_and_what_to_change(minmax_digits):
    # One epoch: two units died in it and had no epoch to be revived in.
    model = SparseAutoEncoder(4, max_iter=1, random_state=0, device="cpu")
    dead = r"2 of the 4 code units are 0 on every training row.*larger max_iter \(it is 1\)"
    with pytest.warns(UserWarning, match=dead):
        model.fit(minmax_digits)
    with pytest.warns(UserWarning, match=r"31 of the 32 .* use a larger k \(it is 1\) or"):
        SparseAutoEncoder(32, sparsity="topk", k=1, max_iter=1, random_state=0, device="cpu").fit(
            minmax_digits[:200]
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_l1_codes_are_sparser_than_autoencoder_codes(X, seed):
    ae_codes = AutoEncoder(random_state=seed, **FAST).fit_transform(X)
    relu_codes = SparseAutoEncoder(sparsity_weight=0.0, random_state=seed, **FAST).fit_transform(X)
    l1_codes = SparseAutoEncoder(sparsity_weight=0.1, random_state=seed, **FAST).fit_transform(X)
    # Measured zero fractions: AutoEncoder 0, ReLU alone 0.12-0.21, L1 0.21-0.29.
    assert (np.abs(ae_codes) < 1e-3).mean() < 0.01
    assert (l1_codes == 0).mean() > 0.15
    assert (l1_codes == 0).mean() > (relu_codes == 0).mean() + 0.05
    assert np.all(l1_codes >= 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_kl_penalty_pulls_mean_activation_towards_target(X, seed):
    params = dict(sparsity="kl", sparsity_target=0.05, random_state=seed, **FAST)
    free = SparseAutoEncoder(sparsity_weight=0.0, **params).fit_transform(X)
    kl = SparseAutoEncoder(sparsity_weight=1.0, **params).fit_transform(X)
    # Measured mean activations: about 0.50 without the penalty, 0.21 with it.
    assert np.all((kl > 0) & (kl < 1))
    assert kl.mean() < 0.3
    assert free.mean() > 0.4


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(sparsity="topk", k=0), "'k' parameter"),
        (dict(sparsity="topk", k=9, n_components=8), "k=9 exceeds n_components=8"),
        (dict(sparsity="unknown"), "'sparsity' parameter"),
        (dict(sparsity_target=1.0), "'sparsity_target' parameter"),
        (dict(sparsity_weight=-1.0), "'sparsity_weight' parameter"),
    ],
)
def test_invalid_parameters_raise_at_fit(X, params, match):
    model = SparseAutoEncoder(**params, max_iter=1)
    with pytest.raises(ValueError, match=match):
        model.fit(X)
    assert not hasattr(model, "net_")
