"""What the benchmarks measure with besides the timer (:mod:`levit_mm.deploy.timing`):
thread counts, peak resident memory, and the plain-text tables they print."""
import contextlib
import resource
from typing import List, Sequence

import torch


@contextlib.contextmanager
def num_threads(n: int):
    """Temporarily set ``torch.set_num_threads``."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def max_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def format_table(title: str, rows: Sequence[Sequence], header: Sequence[str]) -> List[str]:
    """A titled, column-aligned plain-text table, as lines."""
    widths = [max(len(str(r[i])) for r in list(rows) + [header]) for i in range(len(header))]
    line = '  '.join(str(h).ljust(w) for h, w in zip(header, widths))
    body = ['  '.join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return ['', title, line, '-' * len(line)] + body


def print_table(title: str, rows: Sequence[Sequence], header: Sequence[str]) -> None:
    print('\n'.join(format_table(title, rows, header)))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> List[str]:
    """A Markdown table, as lines (what results files and the README show)."""
    lines = ['| ' + ' | '.join(str(h) for h in header) + ' |', '|' + '---|' * len(header)]
    return lines + ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]


def run_child(cmd: Sequence[str], what: str, cwd: str) -> dict:
    """Run a measuring child process (its own peak memory) and return the JSON object on
    the last line of its output; a failure stops the tool with the end of its stderr."""
    import json
    import subprocess
    import sys
    run = subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd)
    if run.returncode:
        sys.exit(f'error: {what} failed:\n{run.stderr[-2000:]}')
    return json.loads(run.stdout.strip().splitlines()[-1])
