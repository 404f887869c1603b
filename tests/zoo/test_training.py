"""Exploding gradients in a basic RNN: clipping keeps training finite, no clipping blows
up, and a non-finite loss stops training with a clear message."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.training import NonFiniteLossError, StopOnNonFiniteLoss

T, D, U = 80, 4, 8


def unstable_model():
    # relu RNN with recurrent kernel 1.15 * I: a<t> grows like 1.15^t, so the loss is
    # finite (about 1e9) but its gradient is about 1.15^T times larger than usual.
    cell = zoo.cells.BasicRNNCell(
        U,
        activation="relu",
        kernel_initializer=keras.initializers.Constant(0.1),
        recurrent_initializer=keras.initializers.Identity(1.15),
    )
    inputs = keras.Input((T, D))
    outputs = keras.layers.Dense(1, name="y")(zoo.layers.Recurrent(cell)(inputs))
    return keras.Model(inputs, outputs)


def data():
    rng = np.random.default_rng(0)
    return rng.uniform(0.0, 1.0, size=(64, T, D)).astype("float32"), np.zeros((64, 1), "float32")


def gradient_norm(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    return float(tf.linalg.global_norm(tape.gradient(loss, model.trainable_weights)))


def test_gradients_explode_without_clipping():
    x, y = data()
    model = unstable_model()
    assert gradient_norm(model, x, y) > 1e6
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    with pytest.raises(NonFiniteLossError, match=r"loss became (nan|inf).*clip"):
        model.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=[StopOnNonFiniteLoss()])


def test_gradient_clipping_keeps_training_finite():
    x, y = data()
    model = unstable_model()
    model.compile(optimizer=keras.optimizers.SGD(1e-3, clipnorm=1.0), loss="mse")
    history = model.fit(
        x, y, batch_size=16, epochs=5, verbose=0, callbacks=[StopOnNonFiniteLoss()]
    )
    losses = history.history["loss"]
    assert len(losses) == 5 and np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_stop_without_raising_keeps_the_message():
    x, y = data()
    model = unstable_model()
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    guard = StopOnNonFiniteLoss(raise_error=False)
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=[guard])
    assert guard.message is not None and "epoch 1" in guard.message
    assert len(history.history.get("loss", [])) <= 1
