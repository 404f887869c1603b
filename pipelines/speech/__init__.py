"""Speech recognition: an audio clip -> its transcript (lengths unrelated; CTC).
``TASK`` is what ``pipelines.common`` runs; its model and data functions are imported
when first called (``task.lazy``)."""

from pipelines.common import inputs
from pipelines.common.task import ReportView, Task, contract_functions, lazy
from pipelines.speech import config

_DATA, _MODEL = "pipelines.speech.data", "pipelines.speech.model"

TASK = Task(
    name="speech",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=ReportView(format=lazy(_MODEL, "format_report"), draw=lazy(_MODEL, "draw_report")),
    # predict: each --file (or --text) is a WAV file or a folder of them.
    predict_input=inputs.whole_files("audio", suffixes=(".wav",)),
    monitor="val_loss",
    combine=lazy(_MODEL, "combine"),
)
