"""The shape the code keeps as it grows: functions a reader sees in one screen (at most 60
lines) in the package, the tools and their shared code; tools that are thin command lines
(each starts with the one CLI header, ``levit_tools.cli.run_cli``, and none imports another
tool).  Read from the source, so a new tool is checked the day it lands."""
import ast
from pathlib import Path

import pytest

from conftest import REPO

MAX_FUNCTION_LINES = 60
CHECKED_ROOTS = ('levit_mm', 'levit_tools', 'tools', 'demo')
TOOLS = sorted(p for root in ('tools', 'demo') for p in (Path(REPO) / root).rglob('*.py'))


def long_functions(root: Path):
    for path in root.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    yield f'{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)'


def test_no_function_over_sixty_lines():
    found = [f for root in CHECKED_ROOTS for f in long_functions(Path(REPO) / root)]
    assert not found, found


@pytest.mark.parametrize('tool', TOOLS, ids=lambda p: str(p.relative_to(REPO)))
def test_each_tool_is_a_thin_command_line(tool):
    tree = ast.parse(tool.read_text(), str(tool))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.update(f'{node.module}.{a.name}' for a in node.names)
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert 'levit_tools.cli.run_cli' in imported, 'tools start with levit_tools.cli.run_cli'
    siblings = {p.stem for p in TOOLS} - {tool.stem}
    roots = {name.split('.')[0] for name in imported}
    assert not roots & (siblings | {'tools'}), 'a tool imports another tool'
