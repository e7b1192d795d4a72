"""The `skae demo` command runs end to end and writes its figure."""

import pytest

import skae._demo
from skae import AutoEncoder
from skae.__main__ import main


def test_demo_prints_the_comparison_and_saves_a_png(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")

    def quick(verbose):
        return AutoEncoder(n_components=8, max_iter=3, random_state=0, verbose=verbose)

    monkeypatch.setattr(skae._demo, "_autoencoder", quick)
    output = tmp_path / "demo.png"
    assert main(["demo", "--output", str(output), "--quiet"]) == 0
    printed = capsys.readouterr().out
    for metric in ("reconstruction MSE", "LogisticRegression accuracy", "ROC-AUC"):
        assert metric in printed
    assert f"Saved original vs reconstructed digits to {output}" in printed
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_requires_a_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "demo" in capsys.readouterr().err
