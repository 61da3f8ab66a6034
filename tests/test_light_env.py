"""The demo's light environment: ``tools/setup_env.sh`` without ``--full`` (mmcv-lite, no
compiled ops, no test references).

The slow tests build a real one with the script itself, once, into a cache that later runs
reuse (``LEVIT_MM_LIGHT_HOME``, default ``~/.cache/levit_mm/light``; a warm run checks its
stamp in seconds), and in it classify the demo photo, train the digits example and use a
dense config.  The fast tests hide mmcv's compiled ops from the full environment instead.
"""
import fcntl
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import REPO, randomize_, run_py

LIGHT_HOME = os.environ.get('LEVIT_MM_LIGHT_HOME',
                            osp.expanduser('~/.cache/levit_mm/light'))
ZOO_FILE = 'levit-128s_3rdparty_in1k_20230117-e9fbd209.pth'
# A closed local port as proxy: any download attempt fails at once, as when offline.
OFFLINE = {'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9',
           'HTTP_PROXY': 'http://127.0.0.1:9', 'HTTPS_PROXY': 'http://127.0.0.1:9',
           'no_proxy': '', 'NO_PROXY': ''}
DENSE_CFG = 'configs/mmdet/retinanet_levit-128s_fpn_1x_coco.py'
HIDE_OPS = "import sys; sys.modules['mmcv._ext'] = None  # as if built without ops\n"


def run(python, args, env=None, timeout=900):
    # PYTHONPATH: this checkout's levit_mm, whichever checkout the shared venv links to.
    full_env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    return subprocess.run([python] + list(args), cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_refusal(proc):
    """Exit 2 and one ``error:`` line naming the fix (nothing else but log lines)."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0]), proc.stderr[-3000:]
    assert 'mmcv' in errors[0] and '`bash tools/setup_env.sh --full`' in errors[0]
    assert 'Traceback' not in proc.stderr and '_ext' not in proc.stderr


# ----------------------------------------------------------------------------- fast
def test_dense_config_without_ops_fails_in_one_line():
    code = (HIDE_OPS + 'from mmengine.config import Config\n'
            f'Config.fromfile({DENSE_CFG!r})\n')
    assert_one_line_refusal(run_py(['-c', code]))


def test_dense_config_with_ops_loads():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, DENSE_CFG))
    assert 'levit_mm.require_mmcv_ops' in cfg.custom_imports.imports


def test_classification_config_needs_no_ops():
    code = (HIDE_OPS + 'from mmengine.config import Config\n'
            "Config.fromfile('configs/levit/levit-128s_8xb256_in1k.py')\nprint('ok')\n")
    proc = run_py(['-c', code])
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-3000:]


def test_setup_rejects_unknown_option(tmp_path):
    proc = subprocess.run(['bash', 'tools/setup_env.sh', '--ful'], cwd=REPO,
                          env=dict(os.environ, LEVIT_MM_HOME=str(tmp_path)),
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown option '--ful' (use --full or --light)"
    assert not os.listdir(tmp_path)  # nothing created


# ----------------------------------------------------------------------------- real
@pytest.fixture(scope='module')
def light_python():
    """The light environment's python, built by the README's setup (shared cache, locked
    so that two test runs never build it at once)."""
    os.makedirs(LIGHT_HOME, exist_ok=True)
    with open(osp.join(LIGHT_HOME, '.test-lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(['bash', 'tools/setup_env.sh'], cwd=REPO,
                              env=dict(os.environ, LEVIT_MM_HOME=LIGHT_HOME),
                              capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    python = osp.join(LIGHT_HOME, 'venv', 'bin', 'python')
    with open(osp.join(LIGHT_HOME, 'venv', '.levit_mm_stamp')) as f:
        level = f.read().split()[1]
    assert level == 'light'
    return python


@pytest.mark.slow
def test_light_env_is_light(light_python):
    code = ('import importlib.util as u, importlib.metadata as m\n'
            "print(u.find_spec('mmcv._ext') is None, m.version('mmcv-lite'),\n"
            "      [n for n in ('timm', 'transformers', 'onnxruntime') if u.find_spec(n)])\n")
    proc = run(light_python, ['-c', code])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ['True', '2.1.0', '[]']


@pytest.mark.slow
def test_demo_in_light_env_matches_full_env(light_python, tmp_path):
    """The README's demo command, offline with the zoo weights in the torch-hub cache (a
    generated checkpoint): the top-5 equals the full environment's."""
    from mmpretrain import get_model
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    model = randomize_(get_model('levit-128s_3rdparty_in1k'), seed=7)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, cache / ZOO_FILE)
    env = dict(OFFLINE, TORCH_HOME=str(tmp_path))
    args = ['demo/image_demo.py', 'demo/chelsea.jpg', 'levit-128s_3rdparty_in1k']
    light = run(light_python, args, env)
    full = run(sys.executable, args, env)
    assert light.returncode == 0, light.stderr[-3000:]
    assert full.returncode == 0, full.stderr[-3000:]
    ranks = [line for line in light.stdout.splitlines() if line.strip()[:2] in
             ('1.', '2.', '3.', '4.', '5.')]
    assert len(ranks) == 5
    assert ranks == [line for line in full.stdout.splitlines() if line in ranks]


@pytest.mark.slow
def test_digits_example_in_light_env(light_python, tmp_path):
    """The demo's offline fallback (teacher, distilled student, tools/test.py, held-out
    digits classified), with the shortest schedules it accepts."""
    proc = run(light_python, ['tools/digits_demo.py', '--work-dir', str(tmp_path),
                              '--teacher-epochs', '2', '--student-epochs', '2', '--show', '3'])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert '=== digits summary' in proc.stdout
    assert 'student (hard distillation)' in proc.stdout
    assert (tmp_path / 'levit-128s_digits.pth').is_file()


@pytest.mark.slow
def test_dense_config_in_light_env_says_what_to_do(light_python, tmp_path):
    """mmdet's own train script (the README's dense command) on a levit_mm config."""
    find = run(light_python, ['-c', 'import mmdet, os; print(os.path.dirname(mmdet.__file__))'])
    assert find.returncode == 0, find.stderr[-3000:]
    train = osp.join(find.stdout.strip(), '.mim', 'tools', 'train.py')
    proc = run(light_python, [train, DENSE_CFG, '--work-dir', str(tmp_path / 'work')])
    assert_one_line_refusal(proc)
    assert not (tmp_path / 'work').exists()
