"""Run the Khronos glTF validator (npm package ``gltf-validator``) on a file through node.

The validator is looked up in ``$SHOERECON_NODE_MODULES``, then ``<repo>/.ci/node_modules`` (where
``.ci/run`` installs it), then node's own resolution (global installs, ``NODE_PATH``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
const fs = require('fs');
const validator = require('gltf-validator');
const path = process.argv[1];
validator.validateBytes(new Uint8Array(fs.readFileSync(path)), {uri: path, maxIssues: 1000})
  .then(report => { process.stdout.write(JSON.stringify(report)); })
  .catch(err => { process.stderr.write(String(err)); process.exit(2); });
"""


class ValidatorUnavailable(RuntimeError):
    """node or the gltf-validator package is missing."""


def _node_env() -> dict:
    env = dict(os.environ)
    paths = [os.environ.get("SHOERECON_NODE_MODULES"), str(REPO_ROOT / ".ci" / "node_modules"), env.get("NODE_PATH")]
    env["NODE_PATH"] = os.pathsep.join(p for p in paths if p)
    return env


def validator_available() -> tuple[bool, str]:
    """(True, "") when node can load gltf-validator, else (False, why)."""
    node = shutil.which("node")
    if node is None:
        return False, "node is not on PATH"
    probe = subprocess.run([node, "-e", "require('gltf-validator')"], env=_node_env(), capture_output=True, text=True)
    if probe.returncode != 0:
        return False, "npm package gltf-validator not found (run .ci/run or `npm install --prefix .ci gltf-validator`)"
    return True, ""


def validate_gltf(path: str | Path, timeout: float = 120.0) -> dict:
    """The validator's JSON report for a .glb/.gltf file; ``report["issues"]["numErrors"]`` counts errors."""
    ok, why = validator_available()
    if not ok:
        raise ValidatorUnavailable(why)
    result = subprocess.run(
        [shutil.which("node"), "-e", _SCRIPT, str(Path(path).resolve())],
        env=_node_env(), capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{path}: gltf-validator failed: {result.stderr.strip()}")
    return json.loads(result.stdout)
