"""Optimizers: Adam as one fused kernel per variable, and Adam whose sparse (embedding)
updates touch only the rows in the batch."""

import keras
import tensorflow as tf

_FUSED_DTYPES = ("float16", "bfloat16", "float32", "float64")


@keras.saving.register_keras_serializable(package="zoo")
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam, each variable's update done by TensorFlow's fused ``ApplyAdam`` kernel.

    Adam's update (step t, α_t = lr · sqrt(1 - β2^t) / (1 - β1^t)):

        m <- m + (1 - β1)(g - m)     v <- v + (1 - β2)(g² - v)     w <- w - α_t m / (sqrt(v) + ε)

    Keras writes it as about ten element-wise ops, each a pass over w, m or v; the fused
    kernel makes one (the optimizer step of a model with large embeddings is 3-4x
    faster; benchmarks/RESULTS.md). A lookup's sparse gradient is made dense first
    (rows looked up twice summed), so g is the whole gradient; ``keras.optimizers.Adam``
    given the lookup's IndexedSlices squares each duplicate before summing, so the two
    differ at rows a batch repeats, and are equal otherwise. With ``amsgrad``, under a
    ``tf.distribute`` strategy, or for other dtypes the update is Keras' own. The
    arguments are Adam's.
    """

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        if self.amsgrad or tf.distribute.has_strategy() or dtype not in _FUSED_DTYPES:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype))


@keras.saving.register_keras_serializable(package="zoo")
class LazyAdam(FusedAdam):
    """Adam that moves an embedding only at the rows a batch looks up.

    A lookup's gradient is a ``tf.IndexedSlices`` g over rows R (duplicates summed). For
    those rows only, with step t and α_t = lr · sqrt(1 - β2^t) / (1 - β1^t):

        m[R] <- β1 m[R] + (1 - β1) g        v[R] <- β2 v[R] + (1 - β2) g²
        w[R] <- w[R] - α_t m[R] / (sqrt(v[R]) + ε)

    Other rows, and their moments, stay as they are (plain Adam decays every row's
    moments and keeps moving rows by their momentum at every step). Dense gradients get
    plain Adam (``FusedAdam``). With a large vocabulary this skips most of the optimizer's work: Adam
    reads and writes w, m and v of every row at every step. The arguments are Adam's
    (``amsgrad`` is not supported).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("Expected amsgrad=False: LazyAdam has no amsgrad. "
                             "Received: amsgrad=True")

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        rows, position = tf.unique(tf.cast(gradient.indices, "int32"))
        g = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position,
                                         tf.shape(rows)[0])  # (rows, ...)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = (tf.cast(learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step))
                 / (1 - tf.pow(beta_1, step)))
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = beta_1 * tf.gather(m.value, rows) + (1 - beta_1) * g
        v_rows = beta_2 * tf.gather(v.value, rows) + (1 - beta_2) * tf.square(g)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(
            alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))
