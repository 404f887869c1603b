"""Activity recognition: frames (wearable-sensor readings or video) -> the activity, one
label per recording (the mean of its windows). ``TASK`` is what ``pipelines.common``
runs; its model and data functions are imported when first called (``task.lazy``)."""

from pipelines.common import metrics
from pipelines.common.task import PredictInput, Task, contract_functions, lazy
from pipelines.activity import config

_DATA, _MODEL = "pipelines.activity.data", "pipelines.activity.model"
_PREDICT = "pipelines.activity.predict"

TASK = Task(
    name="activity",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=metrics.CLASSIFICATION,
    # predict: --file a recording (.csv/.npy) or a folder of them, --text a file or an
    # embedded recording's name (watch_dataset.npy[17]); video models: GIF files.
    predict_input=PredictInput(endpoint="recordings", read_text=lazy(_PREDICT, "read_sensor"),
                               read_file=lazy(_PREDICT, "sensor_files"),
                               feed=lazy(_PREDICT, "feed_sensor"), show=str, stdin=False,
                               bind=lazy(_PREDICT, "bind")),
    monitor="val_loss",
    combine=lazy(_MODEL, "combine"),
    data_flags={"data": ("data", "'embedded', a sensor folder (labels.csv file,label,subject) "
                         "or a video folder (a sub-folder of clips per class)")},
)
