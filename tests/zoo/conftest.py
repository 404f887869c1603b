import keras
import numpy as np
import pytest

import zoo

# (name, extra cell kwargs): every cell and variant the references cover.
CELL_CASES = [
    ("rnn", {}),
    ("rnn", {"activation": "relu"}),
    ("simplified_gru", {}),
    ("gru", {}),
    ("lstm", {}),
    ("peephole_lstm", {}),
    ("peephole_lstm", {"output_peephole": "current"}),
]
CELL_IDS = [n + ("-" + "-".join(map(str, k.values())) if k else "") for n, k in CELL_CASES]


def make_cell(name, units, input_dim, seed=0, dtype="float64", **kwargs):
    """A built cell with random (not default) weights, peepholes included."""
    cell = zoo.cells.get(name, units, dtype=dtype, **kwargs)
    cell.build((None, input_dim))
    rng = np.random.default_rng(seed)
    for w in cell.weights:
        w.assign(rng.normal(0.0, 0.5, size=w.shape).astype(dtype))
    return cell


@pytest.fixture(params=CELL_CASES, ids=CELL_IDS)
def cell_case(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
