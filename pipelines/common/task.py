"""The record a task hands to the shared skeleton, and what its data step returns."""

import dataclasses
from typing import Any, Callable, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class Datasets:
    """What ``Task.make_datasets`` returns.

    ``train``/``valid``/``test`` are ``tf.data.Dataset``s of ``(inputs, targets)`` batches
    ready for ``model.fit`` (``test`` may be None). ``meta`` is a JSON-able dict of
    everything learned from the training data that the model, the evaluation and the
    export need (vocabulary, label names...): it is saved beside the model and handed
    back to every later step. ``sizes`` counts examples per split, for the log.
    """

    train: Any
    valid: Any
    test: Any
    meta: Mapping[str, Any]
    sizes: Mapping[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Task:
    """A task, as functions. See ``pipelines.common`` for the full contract."""

    name: str
    presets: Mapping[str, Any]
    make_datasets: Callable[..., Datasets]
    read_split: Callable[..., Any]
    build_model: Callable[..., Any]
    search_space: Callable[..., Any]
    serving_model: Callable[..., Any]
    evaluate: Callable[..., Mapping[str, Any]]
    example_inputs: Callable[..., list]
    format_prediction: Callable[[Mapping[str, Any]], str]
    monitor: str = "val_loss"
    sample: Optional[Callable[..., Any]] = None
    # Optional: (members, config, meta) -> one compiled model from trained members (an
    # ensemble; configs with ``ensemble`` > 1, see ``train.fit_ensemble``).
    combine: Optional[Callable[..., Any]] = None
    # Extra subcommands: {name: (add_arguments(parser), run(task, args) -> int)}, e.g.
    # ``score`` and ``sample`` of a language model; they take the common flags too.
    commands: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    default_preset: str = "default"
    test_preset: str = "small"

    def __post_init__(self):
        for name in (self.default_preset, self.test_preset):
            if name not in self.presets:
                raise ValueError(
                    f"Task {self.name!r}: preset {name!r} missing. Received: {sorted(self.presets)}"
                )
        mode = self.monitor_mode
        if mode not in ("min", "max"):
            raise ValueError(f"Expected monitor 'val_<metric>'. Received: monitor={self.monitor!r}")

    @property
    def monitor_mode(self):
        """'min' for losses, 'max' for anything else (accuracy, F1)."""
        return "min" if self.monitor.endswith("loss") else "max"
