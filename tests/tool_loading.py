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
    from levit_tools.cli import run_cli
    _follow_captured_streams()
    code = 0
    try:
        run_cli(module.main, argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _follow_captured_streams():
    """mmengine's loggers keep the stdout they were created with; under pytest's capsys that
    stream is closed after the test that created them, so point them at the current one."""
    import logging
    import sys

    from mmengine.logging import MMLogger
    for logger in list(MMLogger._instance_dict.values()):
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stdout  # setStream would flush the closed one
