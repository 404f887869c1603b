"""Attention over a sequence of encoder activations, as the course writes it.

For a decoder state s (the query) and encoder activations a<1..Tx> (the values), a
score e<t'> per source step, the attention weights α<t'> = softmax over t' of e<t'>
(padding steps masked out: α = 0 there), and the context c = Σ_t' α<t'> a<t'>:

* ``AdditiveAttention`` (Bahdanau et al. 2015, the course's "small neural network"):
  e<t'> = vᵀ tanh(W_s s + W_a a<t'> + b)
* ``MultiplicativeAttention`` (Luong et al. 2015, "general"): e<t'> = sᵀ W a<t'>

Both take one query (batch, d_s) or a sequence of queries (batch, Ty, d_s) (every
decoder step of a teacher-forced pass at once). A row whose source is all padding gets
α = 0 and c = 0 (no NaN).
"""

import keras
from keras import ops

_MASKED = -1e9  # the score of a padding step: exp(-1e9 - max) is 0 in float32


class _Attention(keras.layers.Layer):
    """The shared part: masked softmax and context; subclasses give the scores."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the source mask is consumed here

    def compute_mask(self, *args, **kwargs):
        return None  # the outputs have no time axis of the source

    def call(self, query, values, mask=None):
        """query (batch, d_s) or (batch, Ty, d_s); values (batch, Tx, d_a); mask
        (batch, Tx) bool (True = a real step). Returns (context (batch, [Ty,] d_a),
        weights α (batch, [Ty,] Tx))."""
        single = len(query.shape) == 2
        if single:
            query = query[:, None, :]  # (batch, 1, d_s)
        scores = self.scores(query, values)  # (batch, Ty, Tx)
        if mask is not None:
            real = ops.cast(mask, "bool")[:, None, :]  # (batch, 1, Tx)
            scores = ops.where(real, scores, ops.full_like(scores, _MASKED))
        weights = ops.softmax(scores, axis=-1)
        if mask is not None:  # an all-padding row: weights 0, not uniform
            weights = weights * ops.cast(real, weights.dtype)
        context = ops.matmul(weights, values)  # (batch, Ty, d_a)
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights


@keras.saving.register_keras_serializable(package="zoo")
class AdditiveAttention(_Attention):
    """Bahdanau attention: e<t'> = vᵀ tanh(W_s s + W_a a<t'> + b), α = softmax(e), c = Σ α a.

    Args:
        units: the size of the hidden layer of the score network (W_s, W_a: d -> units).

    Call arguments:
        query: (batch, d_s) or (batch, Ty, d_s). values: (batch, Tx, d_a).
        mask: optional (batch, Tx) bool, True on real source steps.
    Returns (context (batch, [Ty,] d_a), weights (batch, [Ty,] Tx)).

    Example:
        >>> context, alpha = AdditiveAttention(32)(s_prev, encoder_outputs, mask=source_mask)
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"Expected units >= 1. Received: units={units!r}")
        self.units = units
        policy = self.dtype_policy  # the sub-layers': mixed precision survives loading
        self.query_dense = keras.layers.Dense(units, use_bias=False, dtype=policy, name="W_s")
        self.value_dense = keras.layers.Dense(units, dtype=policy, name="W_a")  # its bias is b
        self.score_dense = keras.layers.Dense(1, use_bias=False, dtype=policy, name="v")

    def build(self, query_shape, values_shape, mask_shape=None):
        self.query_dense.build(query_shape)
        self.value_dense.build(values_shape)
        self.score_dense.build(tuple(values_shape[:-1]) + (self.units,))

    def scores(self, query, values):
        q = self.query_dense(query)[:, :, None, :]  # (batch, Ty, 1, units)
        k = self.value_dense(values)[:, None, :, :]  # (batch, 1, Tx, units)
        return self.score_dense(ops.tanh(q + k))[..., 0]  # (batch, Ty, Tx)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="zoo")
class MultiplicativeAttention(_Attention):
    """Luong's "general" attention: e<t'> = sᵀ W a<t'>, α = softmax(e), c = Σ α a.

    Call arguments and returns: as ``AdditiveAttention``.

    Example:
        >>> context, alpha = MultiplicativeAttention()(s, encoder_outputs, mask=source_mask)
    """

    def build(self, query_shape, values_shape, mask_shape=None):
        self.kernel = self.add_weight(name="W", shape=(query_shape[-1], values_shape[-1]),
                                      initializer="glorot_uniform")

    def scores(self, query, values):
        projected = ops.matmul(query, self.kernel)  # (batch, Ty, d_a)
        return ops.matmul(projected, ops.transpose(values, (0, 2, 1)))  # (batch, Ty, Tx)
