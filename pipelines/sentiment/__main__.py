from pipelines.common.cli import main
from pipelines.sentiment import TASK
raise SystemExit(main(TASK))
