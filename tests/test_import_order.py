"""The vector index loads onnxruntime before usearch: the other order segfaults the process."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_vector_index_then_embedder_in_one_process() -> None:
    pytest.importorskip("onnxruntime")
    code = (
        "import tempfile, pathlib, numpy as np\n"
        "from paperboy.search.vector import VectorIndex\n"
        "v = VectorIndex.create(pathlib.Path(tempfile.mkdtemp()) / 'v.hnsw', 4, 'm')\n"
        "v.upsert(['a'], np.full((1, 4), 0.5, dtype=np.float32))\n"
        "import onnxruntime\n"
        "print(len(v))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-500:]}"
    assert result.stdout.strip() == "1"
