from pipelines.common.cli import main
from pipelines.activity import TASK

raise SystemExit(main(TASK))
