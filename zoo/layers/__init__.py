"""Sequence-level layers: the time loop, the deep (stacked) RNN, output heads, the CRF
and attention.

Bidirectional use of any cell is ``keras.layers.Bidirectional(Recurrent(cell))``.
"""

from zoo.layers.attention import AdditiveAttention, MultiplicativeAttention
from zoo.layers.crf import CRF
from zoo.layers.deep import DeepRNN
from zoo.layers.heads import LogMeanExp, MemberStack, OutputHead
from zoo.layers.recurrent import Recurrent

__all__ = ["AdditiveAttention", "DeepRNN", "LogMeanExp", "MemberStack", "MultiplicativeAttention", "OutputHead", "Recurrent"]
