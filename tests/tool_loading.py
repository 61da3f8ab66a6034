"""Import a script under tools/ or demo/ as a module, to call its ``main`` in-process."""
import importlib.util
import os.path as osp

from conftest import REPO


def load_tool(relpath: str):
    path = osp.join(REPO, relpath)
    name = 'tool_' + relpath.replace('/', '_').replace('.py', '')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool_cli(module, argv, capsys):
    """``run_cli(main, argv)`` -> (exit code, stdout, stderr)."""
    from levit_mm.tools_common import run_cli
    code = 0
    try:
        run_cli(module.main, argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
