from pipelines.common.cli import main
from pipelines.translation import TASK

raise SystemExit(main(TASK))
