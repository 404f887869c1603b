from pipelines.char_lm import TASK
from pipelines.common.cli import main
raise SystemExit(main(TASK))
