from pipelines.common.cli import main
from pipelines.dna import TASK

raise SystemExit(main(TASK))
