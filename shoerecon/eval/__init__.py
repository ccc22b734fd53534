"""Evaluation: 2D/3D/mesh-quality metrics (metrics.py), invariance to input framing (invariance.py),
``evaluate`` and the written report (report.py), and `shoerecon eval` (cli.py)."""
