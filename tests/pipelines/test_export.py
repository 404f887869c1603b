"""Export housekeeping: the partial directories of killed exports are removed, a live
writer's are not."""

import subprocess
import sys

from pipelines.common import export


def test_stale_partial_exports_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name in (f".tmp-{dead.pid}", f".tmp-{live.pid}", ".tmp-notapid", "3"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "saved_model.pb").write_bytes(b"partial")
        assert export.remove_stale_partials(str(tmp_path)) == [str(tmp_path / f".tmp-{dead.pid}")]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [f".tmp-{live.pid}", ".tmp-notapid", "3"])
        assert export.versions(str(tmp_path)) == [3]
    finally:
        live.kill()
        live.wait()
