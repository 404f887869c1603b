"""Recurrent cells: one time step each, following the course equations.

``get(name, units, **kwargs)`` builds a cell from its short name, the names that
configs and keras-tuner search spaces use.
"""

from zoo.cells.basic_rnn_cell import BasicRNNCell
from zoo.cells.gru_cell import GRUCell
from zoo.cells.lstm_cell import LSTMCell
from zoo.cells.peephole_lstm_cell import PeepholeLSTMCell
from zoo.cells.simplified_gru_cell import SimplifiedGRUCell

CELLS = {
    "rnn": BasicRNNCell,
    "simplified_gru": SimplifiedGRUCell,
    "gru": GRUCell,
    "lstm": LSTMCell,
    "peephole_lstm": PeepholeLSTMCell,
}


def get(name, units, **kwargs):
    """The cell called ``name`` (one of ``CELLS``) with ``units`` units."""
    if name not in CELLS:
        raise ValueError(f"Unknown cell {name!r}. Expected one of {sorted(CELLS)}.")
    return CELLS[name](units, **kwargs)


__all__ = [
    "BasicRNNCell",
    "CELLS",
    "GRUCell",
    "LSTMCell",
    "PeepholeLSTMCell",
    "SimplifiedGRUCell",
    "get",
]
