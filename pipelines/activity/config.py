"""Activity configs: ``default`` (the embedded smartwatch recordings, 3 subjects held
out, the main job), ``video`` (a folder of clips per class: --data DIR) and ``small``
(tests)."""

import dataclasses
from typing import Annotated, Literal, Optional

from pipelines.common.config import AtLeast1, BaseConfig, Fraction, NonNegative, Range, require


@dataclasses.dataclass(frozen=True)
class ActivityConfig(BaseConfig):
    """Inherited (``pipelines.common.config``): data, train_file + valid_file (+
    test_file) instead, valid_fraction, cell, units, num_layers, dropout, learning_rate,
    clipnorm, batch_size, epochs, patience, seed; and the defaults changed here.

    ``data``: "embedded" (140 smartwatch recordings of 7 shoulder exercises by 10
    subjects: wearable-sensor readings, not images), a sensor folder (``labels.csv``
    ``file,label,subject`` beside a .csv or .npy per recording) or a video folder (a
    sub-folder of clips per class). ``kind`` says which when "auto" cannot tell.
    Splits are by subject, never one person's recordings in two: ``test_subjects`` /
    ``valid_subjects`` name them, else seeded fractions of the subjects."""

    kind: Literal["auto", "sensor", "video"] = "auto"
    nan: Literal["refuse", "interpolate"] = "refuse"  # NaN readings in a sensor folder
    test_subjects: tuple[str, ...] = ()
    valid_subjects: tuple[str, ...] = ()
    valid_fraction: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.2
    test_fraction: Annotated[float, Fraction] = 0.2
    # Sensor windows: `window` frames every `stride` frames in training; a recording's
    # prediction is the mean of its windows' probabilities (every frame in a window).
    window: Annotated[int, AtLeast1] = 250
    stride: Annotated[int, AtLeast1] = 50
    # Training-window augmentation (sensor): each group of 3 channels (x, y, z of one
    # sensor) turned by one random rotation of at most `rotate` degrees about a random
    # axis (a watch worn a little differently), then each channel scaled by a factor
    # drawn from [1 - scale, 1 + scale]. 0 = off.
    rotate: Annotated[float, Range(0, 180)] = 0.0
    scale: Annotated[float, Fraction] = 0.0
    # Video clips: `frames` frames (uniformly over the clip, or every `frame_stride`-th),
    # `size` x `size` pixels; a per-frame encoder under TimeDistributed: a small CNN of
    # `frame_filters` (doubling per block), or a keras.applications backbone with its
    # weights file (`backbone_weights`, loaded locally: no download).
    frames: Annotated[int, AtLeast1] = 16
    size: Annotated[int, Range(8, 512)] = 64
    sampling: Literal["uniform", "stride"] = "uniform"
    frame_stride: Annotated[int, AtLeast1] = 1
    backbone: Literal["cnn", "mobilenet_v3_small", "efficientnet_b0"] = "cnn"
    backbone_weights: Optional[str] = None
    frame_filters: Annotated[int, AtLeast1] = 16
    # Model: conv_layers 1-D convolutions over time (stride 2 for the first
    # log2(time_reduction)), a deep bidirectional zoo RNN, pooling over time, softmax.
    conv_layers: Annotated[int, NonNegative] = 2
    conv_filters: Annotated[int, AtLeast1] = 64
    time_reduction: Annotated[int, Range(1, 4)] = 4  # 1, 2 or 4
    pooling: Literal["max", "mean", "mean_max", "last"] = "mean_max"
    units: Annotated[int, AtLeast1] = 64
    num_layers: Annotated[int, AtLeast1] = 2
    dropout: Annotated[float, Fraction] = 0.3
    learning_rate: Annotated[float, Range(0, low_open=True)] = 2e-3
    clipnorm: Annotated[float, NonNegative] = 1.0  # clipping on by default
    batch_size: Annotated[int, AtLeast1] = 32
    epochs: Annotated[int, AtLeast1] = 30
    patience: Annotated[int, NonNegative] = 8
    # Members trained one after another with seeds seed, seed + 1, ...; the exported
    # model averages their probabilities (``train.fit_ensemble``).
    ensemble: Annotated[int, AtLeast1] = 1
    # Serving: windows run per call (bounds memory for a long recording).
    serve_batch_windows: Annotated[int, AtLeast1] = 256

    def __post_init__(self):
        super().__post_init__()
        require(self.stride <= self.window, "stride", f"a value <= window ({self.window})",
                self.stride)
        require(self.time_reduction in (1, 2, 4), "time_reduction", "1, 2 or 4",
                self.time_reduction)
        require(self.time_reduction == 1 or self.conv_layers >= self.time_reduction // 2,
                "conv_layers", f">= {self.time_reduction // 2} for time_reduction="
                f"{self.time_reduction}", self.conv_layers)
        require(self.rotate == 0 or self.kind != "video", "rotate", "0 for video", self.rotate)
        require(self.backbone == "cnn" or self.backbone_weights, "backbone_weights",
                f"a local weights file for backbone={self.backbone}", self.backbone_weights)


PRESETS = {
    # An ensemble of 3: 92.9% of held-out subjects' recordings against 90.7% for one
    # model (benchmarks/RESULTS.md, 5 folds).
    "default": ActivityConfig(test_subjects=("2", "5", "9"), valid_subjects=("7",),
                              rotate=15.0, scale=0.1, ensemble=3),
    # A folder of video clips per class: frames through a small CNN, then the RNN.
    "video": ActivityConfig(kind="video", conv_layers=0, time_reduction=1, units=64,
                            num_layers=1, batch_size=8, epochs=20, patience=5),
    # Tests: short windows, a tiny model, one epoch.
    "small": ActivityConfig(test_subjects=("2", "5", "9"), valid_subjects=("7",),
                            window=100, stride=100, conv_filters=8, units=8, num_layers=1,
                            dropout=0.0, epochs=1, patience=0, frames=4, size=16,
                            frame_filters=4),
}
