"""Sequence-level layers: the time loop, the deep (stacked) RNN and output heads.

Bidirectional use of any cell is ``keras.layers.Bidirectional(Recurrent(cell))``.
"""

from zoo.layers.crf import CRF
from zoo.layers.deep import DeepRNN
from zoo.layers.heads import OutputHead
from zoo.layers.recurrent import Recurrent

__all__ = ["DeepRNN", "OutputHead", "Recurrent"]
