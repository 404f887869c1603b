"""Training helpers shared by the pipelines."""

import math

import keras


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite.

    The weights are then garbage, so by default it raises ``NonFiniteLossError`` with
    the epoch, the batch and the usual cure (exploding gradients: clip them, lower the
    learning rate) instead of letting ``fit`` return as if all went well. With
    ``raise_error=False`` it only sets ``model.stop_training`` and keeps ``message``.
    """

    def __init__(self, raise_error=True):
        super().__init__()
        self.raise_error = raise_error
        self.message = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.message = (
            f"Training stopped: the loss became {float(loss)} at epoch {self._epoch + 1}, "
            f"batch {batch + 1}. Exploding gradients are the usual cause: clip them "
            "(optimizer clipnorm, on by default in the pipelines) or lower the learning rate."
        )
        self.model.stop_training = True
        if self.raise_error:
            raise NonFiniteLossError(self.message)
