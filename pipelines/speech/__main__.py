from pipelines.common.cli import main
from pipelines.speech import TASK

raise SystemExit(main(TASK))
