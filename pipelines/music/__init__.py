"""Music generation: nothing or a primer -> a piece (one-to-many, generative). ``TASK`` is
what ``pipelines.common`` runs; its model, data and sampling functions are imported when
first called (``task.lazy``)."""

from pipelines.common import metrics
from pipelines.common.task import PredictInput, Task, contract_functions, lazy
from pipelines.music import config

_DATA, _MODEL, _SAMPLE = "pipelines.music.data", "pipelines.music.model", "pipelines.music.sample"

TASK = Task(
    name="music",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=metrics.SCALARS,
    # predict: each --text/--file is a primer (a MIDI / MusicXML / ABC / kern file,
    # corpus:NAME, or "" for none) read on the export's grid (bind); each generated
    # piece is written as .mid and .png into --out.
    predict_input=PredictInput(endpoint="generate", read_text=None, read_file=None,
                               feed=lazy(_SAMPLE, "feed"), show=lazy(_SAMPLE, "show"),
                               stdin=False, bind=lazy(_SAMPLE, "bind")),
    monitor="val_loss",
    commands={"sample": (lazy(_SAMPLE, "add_sample_arguments"), lazy(_SAMPLE, "run_sample"))},
)
