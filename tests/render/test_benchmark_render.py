"""benchmarks/render.py runs end to end on a tiny grid, and its pytorch3d parity table works (pytorch3d replaced
by a fake that returns our own selection with pytorch3d's indexing and exploding raw gradients)."""
import math

from benchmarks import render as bench
from shoerecon.render.backends import pytorch3d_backend as p3b
from tests.render.test_backends import _fake_pytorch3d

TINY = ["--sizes", "16", "--faces", "80", "--batch", "1", "--views", "2", "--repeats", "1", "--threads", "1", "--texture", "8"]


def test_benchmark_without_pytorch3d_says_so(capsys, monkeypatch):
    monkeypatch.setattr(p3b, "available", lambda: False)
    bench.main(TINY + ["--no-memory", "--compare-pytorch3d", "--k", "2", "4"])
    out = capsys.readouterr().out
    assert "pytorch3d is not importable here" in out
    assert len([line for line in out.splitlines() if line.startswith("cpu")]) == 2


def test_parity_table_with_a_fake_pytorch3d(capsys, monkeypatch):
    monkeypatch.setattr(p3b, "available", lambda: True)
    monkeypatch.setattr(p3b, "_call_pytorch3d", _fake_pytorch3d(1e12))
    bench.compare_pytorch3d(bench.main.__globals__["argparse"].Namespace(
        k=[3], sigma=1e-4, cull=False, sizes=[16], faces=[80], batch=1, views=2, texture=8))
    captured = capsys.readouterr()
    row = captured.out.strip().splitlines()[-1].split()
    assert row[:2] == ["16", "80"] and float(row[2]) == 1.0  # the fake picks our faces
    assert float(row[6]) < 1e-5  # ours vs the float64 reference
    assert math.isnan(float(row[7])) and "issue 561" in captured.err  # the guard caught the raw gradient


def test_peak_memory_subprocess_reports_a_number():
    args = bench.main.__globals__["argparse"].Namespace(
        batch=2, views=2, texture=64, sigma=1e-4, gamma=1e-4, threads=1, cull=False)
    peak = bench.peak_in_subprocess(args, 96, 1280, 8)
    assert peak > 1 and peak < 2000
