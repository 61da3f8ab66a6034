"""levit_mm's imports flow one way: no module (and no room of the house) imports, directly
or through others, anything that imports it; and the package (the library users import)
never imports the tools' shared code (levit_tools) that sits above it.  The graph is read from the source, every
``import`` statement included, also those inside functions, which hide a loop from Python
but not from a reader."""
import ast
import os.path as osp
from pathlib import Path
from typing import Dict, List, Set

from conftest import REPO

PACKAGE = Path(REPO) / 'levit_mm'
TOOLS_PACKAGE = Path(REPO) / 'levit_tools'


def module_name(path: Path) -> str:
    parts = list(path.relative_to(Path(REPO)).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def is_package(name: str, modules: Set[str]) -> bool:
    return any(m.startswith(name + '.') for m in modules)


def import_graph() -> Dict[str, Set[str]]:
    """levit_mm / levit_tools module -> the modules of either it imports (a package means
    its __init__)."""
    files = {module_name(p): p for root in (PACKAGE, TOOLS_PACKAGE) for p in root.rglob('*.py')}
    modules = set(files)
    graph: Dict[str, Set[str]] = {}
    for name, path in files.items():
        package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
        targets: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')
                    base = base[:len(base) - (node.level - 1)]
                    source = '.'.join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ''
                targets.add(source)
                # `from pkg import sub` imports the submodule pkg.sub
                targets.update(f'{source}.{alias.name}' for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One cycle as a list of nodes (first == last), or [] if the graph has none."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def room(module: str) -> str:
    """The part of the house a module belongs to: its subpackage, or itself at the top."""
    parts = module.split('.')
    return '.'.join(parts[:2])


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # teacher.py imports mmengine lazily, but levit_mm modules at the top; the CLI helpers
    # import the checks inside a function: the graph must see that edge.
    assert 'levit_tools.validation' in graph['levit_tools.cli']
    assert 'levit_mm.arch' in graph['levit_mm.backbones.levit']


def test_no_import_cycle_between_modules():
    cycle = find_cycle(import_graph())
    assert not cycle, 'import cycle: ' + ' -> '.join(cycle)


def test_no_import_cycle_between_rooms():
    """Rooms (subpackages, top-level modules) form a DAG too; the package's own
    ``__init__`` (which imports everything to register it) is the only entry point."""
    rooms: Dict[str, Set[str]] = {}
    for source, targets in import_graph().items():
        if source in ('levit_mm', 'levit_tools'):
            continue
        rooms.setdefault(room(source), set()).update(
            room(t) for t in targets if t != 'levit_mm' and room(t) != room(source))
    cycle = find_cycle(rooms)
    assert not cycle, 'rooms import each other: ' + ' -> '.join(cycle)


def test_finds_a_planted_cycle():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) == []


def test_layers_point_down():
    """The bottom of the house imports nothing above it: the arch table, the bias tables,
    folding and the finite checks import no other room of levit_mm (but each other), and
    the backbone none of heads, classifiers, convert, engine, deploy or the tools' code."""
    graph = import_graph()
    bottom = {'levit_mm.arch', 'levit_mm.attention_bias', 'levit_mm.folding',
              'levit_mm.finite', 'levit_mm.fileio'}
    for name in bottom:
        assert graph[name] <= bottom, (name, graph[name] - bottom)
    above = ('levit_mm.heads', 'levit_mm.classifiers', 'levit_mm.convert',
             'levit_tools', 'levit_mm.engine', 'levit_mm.model_zoo', 'levit_mm.deploy')
    for name, targets in graph.items():
        if name.startswith('levit_mm.backbones'):
            assert not [t for t in targets if t.startswith(above)], (name, targets)
    assert osp.isfile(TOOLS_PACKAGE / '__init__.py')


def test_the_library_never_imports_the_tools_code():
    graph = import_graph()
    assert not osp.exists(PACKAGE / 'support')
    for name, targets in graph.items():
        if name.startswith('levit_mm'):
            assert not [t for t in targets if t.startswith('levit_tools')], (name, targets)
