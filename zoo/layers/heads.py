import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class OutputHead(keras.layers.Layer):
    """The output layer g2: ŷ<t> = g2(W_y a<t> + b_y), g2 = sigmoid or softmax.

    ``per_step=True`` applies it at every step (many-to-many: (batch, time, d) ->
    (batch, time, classes)); ``per_step=False`` at the last real step only
    (many-to-one): 3D input is reduced to the last unmasked a<t> of each sequence,
    2D input (a ``return_sequences=False`` RNN) is used as it is.

    Args:
        num_classes: 1 with sigmoid (binary: P(y=1)), >= 2 with softmax.
        activation: ``"sigmoid"``, ``"softmax"`` or None to choose from num_classes.
        per_step: see above.

    Call arguments:
        inputs: (batch, d) or (batch, time, d); mask: optional (batch, time).
    """

    def __init__(self, num_classes, activation=None, per_step=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"Expected num_classes >= 1. Received: num_classes={num_classes!r}")
        activation = activation or ("sigmoid" if num_classes == 1 else "softmax")
        if activation not in ("sigmoid", "softmax"):
            raise ValueError(
                f"Expected activation 'sigmoid' or 'softmax'. Received: activation={activation!r}"
            )
        self.num_classes = num_classes
        self.activation = activation
        self.per_step = per_step
        self.supports_masking = True
        self.dense = keras.layers.Dense(num_classes, activation=activation,
                                        dtype=self.dtype_policy, name="g2")

    def build(self, input_shape):
        self.dense.build(input_shape[:1] + input_shape[-1:])

    def call(self, inputs, mask=None):
        if len(inputs.shape) == 3 and not self.per_step:
            if mask is None:
                inputs = inputs[:, -1]
            else:
                last = ops.maximum(ops.sum(ops.cast(mask, "int32"), axis=1) - 1, 0)  # (batch,)
                inputs = ops.take_along_axis(inputs, last[:, None, None], axis=1)[:, 0]
        return self.dense(inputs)

    def compute_mask(self, inputs, mask=None):
        return mask if self.per_step else None

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 3 and self.per_step:
            return input_shape[:2] + (self.num_classes,)
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "activation": self.activation,
            "per_step": self.per_step,
        }


@keras.saving.register_keras_serializable(package="zoo")
class MemberStack(keras.layers.Layer):
    """K ensemble members' outputs of one shape (batch, ...) -> (batch, K, ...), for a
    combination that cannot be a per-element mean (a CTC ensemble scores whole
    transcripts under every member: ``zoo.builders.speech_recognizer.CTCLoss``).

    Call arguments:
        inputs: a list of K >= 1 tensors of one shape (batch, ...); mask: ignored.
    """

    def call(self, inputs):
        return ops.stack([ops.cast(x, self.compute_dtype) for x in inputs], axis=1)

    def compute_output_shape(self, input_shape):
        first = tuple(input_shape[0])
        return (first[0], len(input_shape)) + first[1:]


@keras.saving.register_keras_serializable(package="zoo")
class LogMeanExp(keras.layers.Layer):
    """The mean of K distributions given as log-probabilities, as log-probabilities:
    log p̄ = log((1/K) Σ_k exp(log p_k)) = logsumexp_k(log p_k) - log K.

    An ensemble of members that output log ŷ averages in probability space and stays a
    log-distribution, so a decoder or loss written for one member reads the ensemble
    unchanged. Not for CTC frame posteriors of separately trained members: they place a
    character's spike at different frames (``MemberStack`` and transcript scores instead).

    Call arguments:
        inputs: a list of K >= 1 tensors of one shape (..., classes); mask: ignored.
    """

    def call(self, inputs):
        stacked = ops.stack([ops.cast(x, self.compute_dtype) for x in inputs], axis=0)
        return ops.logsumexp(stacked, axis=0) - ops.log(float(len(inputs)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
