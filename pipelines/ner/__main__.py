from pipelines.common.cli import main
from pipelines.ner import TASK
raise SystemExit(main(TASK))
