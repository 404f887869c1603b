from pipelines.common.cli import main
from pipelines.music import TASK

raise SystemExit(main(TASK))
