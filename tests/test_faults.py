"""Disk and permission faults (issue 22): every tool that writes ends an operating-system
fault with one ``error:`` line naming the path and the cause, exit status 2, no traceback;
what was on the disk before stays byte-identical and no partial file is left.

Each tool meets each fault class (:mod:`fault_injection`: read-only, permission denied,
operation not permitted, missing folder, disk full, quota) wherever it writes, which the
output check before the work must catch; and a disk that fills while the output itself is
written, half of its bytes already on the disk, which the atomic writer must clean up.  The
writers themselves meet every fault class mid-write in ``test_writer_fault``.
"""
import errno
import tempfile
import os.path as osp
from collections import namedtuple

import pytest
import torch
from conftest import REPO, randomize_
from fault_injection import ALL_FAULTS, PLAIN_WORDS, disk_fault, fault_id, tree
from tiny_training import write_config, write_image_folders
from tool_loading import load_tool, run_tool_cli

#: tool -> what it is told, where its first write goes, and the path its error line names
#: (``start``: the output checked before the work; ``write``: the output being written)
Case = namedtuple('Case', 'tool argv start write match after previous')
PREVIOUS = b'the previous file, which must survive the failed write'


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """A tiny image-folder dataset, a tiny LeViT config with its checkpoint, and a LeViT-128S
    checkpoint (random weights) for the converter."""
    from mmengine.config import Config
    from mmpretrain import get_model
    from mmpretrain.registry import MODELS
    root = tmp_path_factory.mktemp('fault_inputs')
    data = write_image_folders(root / 'data', per_class=2, val_per_class=1)
    config = write_config(root / 'tiny.py', REPO, data, max_iters=2, ckpt_interval=1)
    model = randomize_(MODELS.build(Config.fromfile(config).model), seed=0)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, root / 'tiny.pth')
    big = randomize_(get_model('levit-128s_3rdparty_in1k', pretrained=False), seed=0)
    torch.save({'state_dict': big.state_dict()}, root / '128s.pth')
    return dict(root=root, data=str(data), config=config, ckpt=str(root / 'tiny.pth'),
                ckpt128s=str(root / '128s.pth'))


def cases(inp, out):
    """The tools, each with its output under ``out``."""
    cfg, ckpt, work = inp['config'], inp['ckpt'], out / 'work'
    scene = ['--canvas', '64x64', '--digit-px', '8', '16']
    return {
        'levit2mmpretrain': Case('tools/model_converters/levit2mmpretrain.py',
                                 [inp['ckpt128s'], out / 'x.pth'], out / 'x.pth',
                                 out / 'x.pth', 'x.pth*', 0, out / 'x.pth'),
        'levit_reparameterize': Case('tools/model_converters/levit_reparameterize.py',
                                     [ckpt, out / 'x.pth'], out / 'x.pth', out / 'x.pth',
                                     'x.pth*', 0, out / 'x.pth'),
        'pytorch2onnx': Case('tools/deployment/pytorch2onnx.py',
                             [cfg, '--checkpoint', ckpt, '--output-file', out / 'x.onnx',
                              '--shape', '32', '32', '--time-iters', '0'],
                             out / 'x.onnx', out / 'x.onnx', 'x.onnx*', 0, out / 'x.onnx'),
        'onnx_quantize_static': Case('tools/deployment/onnx_quantize_static.py',
                                     [cfg, ckpt, '--output-file', out / 'x.onnx',
                                      '--calib-images', '2', '--check-images', '0',
                                      '--batch', '2'],
                                     out / 'x.onnx', out / 'x.onnx', '*.onnx', 0,
                                     out / 'x.onnx'),
        'image_demo --show-dir': Case('demo/image_demo.py',
                                      [f'{REPO}/demo/chelsea.jpg', cfg, '--checkpoint', ckpt,
                                       '--show-dir', out / 'show'],
                                      out / 'show', out / 'show' / 'chelsea.png', '*.png', 0,
                                      out / 'show' / 'chelsea.png'),
        # the first checkpoint is written, the second fails; an iter_2.pth of an earlier
        # run must survive
        'train': Case('tools/train.py', [cfg, '--work-dir', work], work, work / 'iter_2.pth',
                      '*.pth*', 1, work / 'iter_2.pth'),
        'test --out': Case('tools/test.py', [cfg, ckpt, '--work-dir', work, '--out',
                                             out / 'm.json'],
                           out / 'm.json', out / 'm.json', 'm.json*', 0, out / 'm.json'),
        'get_flops --results': Case('tools/analysis_tools/get_flops.py',
                                    [cfg, '--shape', '32', '32', '--results', out / 'r.md'],
                                    out / 'r.md', out / 'r.md', 'r.md*', 0, out / 'r.md'),
        'make_digit_scenes': Case('tools/dataset_converters/make_digit_scenes.py',
                                  ['--out', out / 'scenes', '--train', '1', '--val', '1'] +
                                  scene, out / 'scenes', out / 'scenes', '*.jpg', 0,
                                  out / 'scenes' / 'previous.bin'),
        'dense_study': Case('tools/dense_study.py',
                            ['--work-dir', work, '--train-images', '1', '--val-images', '1',
                             '--only', 'retinanet_levit_agnostic'],
                            work, work, '*.jpg', 0, work / 'data' / 'previous.bin'),
        'digits_demo': Case('tools/digits_demo.py', ['--work-dir', work, '--px', '8'], work,
                            work, '*.png', 0, work / 'data' / 'previous.bin'),
    }


TOOLS = list(cases({'config': '', 'ckpt': '', 'ckpt128s': ''}, __import__('pathlib').Path()))
_loaded = {}


def tool(relpath):
    if relpath not in _loaded:
        _loaded[relpath] = load_tool(relpath)
    return _loaded[relpath]


def check_one_line(code, stderr, path, fault):
    """Exit 2, no traceback, and one ``error:`` line -- the last -- naming ``path`` and the
    fault in plain words with its errno name."""
    assert code == 2, stderr[-3000:]
    assert 'Traceback' not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and stderr.strip().splitlines()[-1] == errors[0], stderr[-3000:]
    line = errors[0]
    assert repr(str(path)) in line, (line, str(path))
    assert PLAIN_WORDS[fault] in line and f'({fault_id(fault)})' in line, line
    return line


def run_with_fault(case, fault, root, capsys, at_start):
    """Run the tool of ``case`` under ``fault`` (everywhere under ``root`` when
    ``at_start``, else on its output file only); returns (exit code, stderr, injected)."""
    case.previous.parent.mkdir(parents=True, exist_ok=True)
    case.previous.write_bytes(PREVIOUS)
    with disk_fault(root, fault, match='*' if at_start else case.match,
                    after=0 if at_start else case.after) as injected:
        code, _, stderr = run_tool_cli(tool(case.tool), [str(a) for a in case.argv], capsys)
    assert injected.snapshot is not None, 'the fault was never reached'
    # what was on the disk when the write failed is still there, byte for byte, and
    # nothing (no partial file, no temporary folder) was left beside it
    assert tree(root) == injected.snapshot
    assert case.previous.read_bytes() == PREVIOUS
    return code, stderr, injected


@pytest.mark.parametrize('fault', ALL_FAULTS, ids=fault_id)
@pytest.mark.parametrize('name', TOOLS)
def test_fault_before_the_work(name, fault, inputs, tmp_path, capsys):
    """Every fault class where the tool writes: found by the output check, before any work
    (nothing new on the disk: no work dir, no log, no partial file)."""
    case = cases(inputs, tmp_path / 'out')[name]
    code, stderr, _ = run_with_fault(case, fault, tmp_path / 'out', capsys, at_start=True)
    check_one_line(code, stderr, case.start, fault)


@pytest.mark.parametrize('name', TOOLS)
def test_disk_full_while_writing(name, inputs, tmp_path, capsys):
    """The disk fills while the output itself is written (half of it on the disk): one
    line naming it, its partial file removed, the previous file of the same name intact."""
    case = cases(inputs, tmp_path / 'out')[name]
    code, stderr, _ = run_with_fault(case, errno.ENOSPC, tmp_path / 'out', capsys,
                                     at_start=False)
    check_one_line(code, stderr, case.write, errno.ENOSPC)


# ------------------------------------------------------------------- the writers
def _torch_writer(path):
    from levit_mm.fileio import save_torch_atomic
    save_torch_atomic({'w': torch.arange(50000.)}, str(path))


def _text_writer(path):
    from levit_mm.fileio import write_text_atomic
    write_text_atomic(str(path), 'x' * 50000)


def _image_writer(path):
    import numpy as np
    from PIL import Image

    from levit_mm.fileio import atomic_output
    with atomic_output(str(path), '.png') as tmp:
        Image.fromarray(np.full((64, 64, 3), 7, np.uint8)).save(tmp)


def _checkpoint_hook_writer(path):
    """AtomicCheckpointHook saving through mmengine's own file backend (``open``)."""
    from mmengine.fileio.backends import LocalBackend
    from mmengine.logging import MessageHub, MMLogger

    from levit_mm.engine import AtomicCheckpointHook

    class Runner:
        work_dir, epoch, iter = str(path.parent), 0, 0
        message_hub = MessageHub.get_instance('writer-fault')
        logger = MMLogger.get_instance('writer-fault', log_level='WARNING')

        def save_checkpoint(self, out_dir, filename, *args, **kwargs):
            LocalBackend().put(b'c' * 50000, osp.join(out_dir, filename))

    hook = AtomicCheckpointHook(interval=1, by_epoch=False)
    hook.before_train(Runner())
    hook._save_checkpoint_with_step(Runner(), 2, {})


def _dump_writer(path):
    from levit_mm.engine import AtomicDumpResults
    AtomicDumpResults(str(path)).compute_metrics([{'pred': list(range(20000))}])


WRITERS = {'save_torch_atomic': (_torch_writer, 'x.pth'),
           'write_text_atomic': (_text_writer, 'x.txt'),
           'atomic_output (PIL)': (_image_writer, 'x.png'),
           'AtomicCheckpointHook': (_checkpoint_hook_writer, 'iter_2.pth'),
           'AtomicDumpResults': (_dump_writer, 'x.pkl')}


@pytest.mark.parametrize('fault', ALL_FAULTS, ids=fault_id)
@pytest.mark.parametrize('writer', list(WRITERS))
def test_writer_fault(writer, fault, tmp_path):
    """Every writer, every fault class, mid-write: an ``OutputWriteError`` with the errno
    and the file asked for, the partial file gone, the previous file intact."""
    from levit_mm.fileio import OutputWriteError
    write, name = WRITERS[writer]
    path = tmp_path / name
    path.write_bytes(PREVIOUS)
    with disk_fault(tmp_path, fault, match=f'{name}*') as injected:
        with pytest.raises(OutputWriteError) as failure:
            write(path)
    assert (failure.value.errno, failure.value.filename) == (fault, str(path))
    assert injected.snapshot is not None and tree(tmp_path) == injected.snapshot
    assert path.read_bytes() == PREVIOUS


def test_real_file_size_limit_through_torch_save(tmp_path):
    """A real kernel fault (the file-size limit: EFBIG), which torch's zip writer reports as
    ``RuntimeError('... unexpected pos ...')``: the writer recovers the cause."""
    import resource
    import signal

    from levit_mm.fileio import OutputWriteError, save_torch_atomic
    path = tmp_path / 'x.pth'
    path.write_bytes(PREVIOUS)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, limit[1]))
    try:
        with pytest.raises(RuntimeError, match='unexpected pos'):  # torch on its own
            torch.save({'w': torch.zeros(1 << 16)}, str(tmp_path / 'plain.pth'))
        with pytest.raises(OutputWriteError) as failure:
            save_torch_atomic({'w': torch.zeros(1 << 16)}, str(path))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    assert (failure.value.errno, failure.value.filename) == (errno.EFBIG, str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['plain.pth', 'x.pth']
    assert path.read_bytes() == PREVIOUS


def test_causeless_torch_write_failure_is_diagnosed(tmp_path, monkeypatch):
    """A writer that only says ``unexpected pos``: the cause is read from the file system
    (here a full one)."""
    import os

    from levit_mm.fileio import OutputWriteError, atomic_output
    full = os.statvfs(str(tmp_path))
    fields = {name: getattr(full, name) for name in dir(full) if name.startswith('f_')}
    fields.update(f_bfree=0, f_bavail=0)
    monkeypatch.setattr(os, 'statvfs', lambda path: namedtuple('S', fields)(**fields))
    with pytest.raises(OutputWriteError) as failure:
        with atomic_output(str(tmp_path / 'x.pth')):
            raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos '
                               '704 vs 598')
    assert (failure.value.errno, failure.value.filename) == (errno.ENOSPC,
                                                              str(tmp_path / 'x.pth'))
    assert list(tmp_path.iterdir()) == []


def test_fault_messages_without_a_written_file():
    """Faults that are not a failed output write keep their path; a write fault without a
    path names the outputs the tool checked; a DataLoader worker's wrapped message is
    reduced to its last line."""
    from levit_tools import cli
    denied = PermissionError(errno.EACCES, 'Permission denied', '/data/x.pth')
    assert cli.os_fault_message(denied) == "'/data/x.pth': permission denied (EACCES)."
    cli.check_output_dir(tempfile.gettempdir())
    full = cli.os_fault_message(OSError(errno.ENOSPC, 'No space left on device'))
    assert full.startswith('cannot write under ') and 'no space left' in full
    assert repr(tempfile.gettempdir()) in full
    wrapped = ('Caught UnreadableImageError in DataLoader worker process 0.\nOriginal '
               'Traceback (most recent call last):\n  File "x.py", line 1\nlevit_mm.'
               "UnreadableImageError: cannot read image 'a.jpg': no such file.")
    assert cli.one_line(wrapped) == "cannot read image 'a.jpg': no such file."


def test_a_failed_step_of_the_digits_example_passes_its_one_line_on(capsys):
    """tools/digits_demo.py runs tools/train.py as a child: its one ``error:`` line (say,
    a full disk while saving) becomes the example's own, exit status 2."""
    from levit_tools.cli import run_cli
    from levit_tools.digits import run_logged
    child = ['-c', "import sys; print('some log line'); print(\"error: cannot write "
             "'w/iter_2.pth': no space left on the device (ENOSPC).\"); sys.exit(2)"]
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda argv: run_logged(child, 'teacher', {}))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == ("error: cannot write 'w/iter_2.pth': no space left on the device "
                   '(ENOSPC). (step: teacher)\n')
