import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The music pipeline caches parsed chorales in the user cache: tests use their own.
os.environ.setdefault("SEQZOO_CACHE", __import__("tempfile").mkdtemp(prefix="seqzoo_cache_"))
# hypothesis keeps its examples in ./.hypothesis (the repository) unless told otherwise.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      __import__("tempfile").mkdtemp(prefix="seqzoo_hypothesis_"))

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402

import pytest  # noqa: E402

_RUNS = {}


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """``small_run(name)``: ``python -m pipelines.<name> --preset <test preset>`` (train,
    evaluate, export, show predictions), run once per task per test session and shared
    by every test that needs a trained task. Returns a dict with ``task``, ``workdir``,
    ``export_dir``, ``version_dir`` (the first export) and ``stdout`` (what it printed)."""
    from pipelines.common.cli import main

    def get(name):
        if name not in _RUNS:
            task = importlib.import_module(f"pipelines.{name}").TASK
            root = tmp_path_factory.mktemp(f"{name}_run")
            workdir, export_dir = str(root / "work"), str(root / "saved_models")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(task, ["--preset", task.test_preset, "--workdir", workdir,
                                   "--export-dir", export_dir, "-q"])
            assert code == 0, out.getvalue()
            _RUNS[name] = {"task": task, "workdir": workdir, "export_dir": export_dir,
                           "version_dir": os.path.join(export_dir, task.name, "1"),
                           "stdout": out.getvalue()}
        return _RUNS[name]

    return get


def assert_data_error(task, config, tmp_path, capsys, name, content, message):
    """Writes ``content`` (None: no file) to ``tmp_path/name`` and checks that reading it
    as ``config``'s data raises DataError ``message`` ({path} filled in), and that
    ``train --data`` prints exactly that as one ``error:`` line and exits with 2."""
    from pipelines.common.cli import main
    from pipelines.common.textio import DataError

    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    expected = message.format(path=path)
    with pytest.raises(DataError) as e:
        task.make_datasets(dataclasses.replace(config, data=str(path)))
    assert str(e.value) == expected
    code = main(task, ["train", "--preset", task.test_preset, "--data", str(path),
                       "--workdir", str(tmp_path / "w"), "-q"])
    assert code == 2 and capsys.readouterr().err == f"error: {expected}\n"


# The task a test directory trains (through small_run) when a test there uses it.
_DIRECTORY_TASK = {"pipelines": "sentiment"}


def _xdist_group(item):
    """The pytest-xdist group of a test: tests that share a trained task (``small_run``)
    run in one worker, named by the task (a ``name`` parameter, else the test's
    directory); tests that share a module- or session-scoped fixture of ours run in one
    worker per module; the rest go wherever a worker is free."""
    if "small_run" in item.fixturenames:
        params = getattr(item, "callspec", None)
        if params is not None and "name" in params.params:
            return params.params["name"]
        directory = os.path.basename(os.path.dirname(str(item.path)))
        return _DIRECTORY_TASK.get(directory, directory)
    for defs in item._fixtureinfo.name2fixturedefs.values():
        if defs and defs[-1].scope in ("module", "session") and \
                getattr(defs[-1].func, "__module__", "").startswith("tests"):
            return item.nodeid.split("::")[0]
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``-n 2 --dist loadgroup``, pyproject's addopts), marks each
    test with its ``xdist_group`` so a trained task or a module's fixture is made once."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = _xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
