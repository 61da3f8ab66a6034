"""tools/digits_demo.py's ablation switches: which configs and options each student run gets
(the EMA and AGC really off, the rest the shipped recipe), and the EMA-vs-raw curve read back
from mmengine's scalars into the results table."""
import json
import os.path as osp

import pytest
from conftest import REPO, run_py
from mmengine.config import Config, DictAction

from levit_tools.digits import student_run, summary_lines, val_curve


def resolved(distilled, ema, agc):
    cfg_path, options = student_run(distilled, ema, agc)
    cfg = Config.fromfile(cfg_path)
    # as tools/train.py's --cfg-options reads them ('None' -> None)
    cfg.merge_from_dict({key: DictAction._parse_iterable(value)
                         for key, value in (option.split('=', 1) for option in options)})
    return cfg


@pytest.mark.parametrize('distilled', [True, False])
def test_switches_drop_only_ema_and_agc(distilled):
    shipped = resolved(distilled, True, True)
    assert shipped.optim_wrapper.type == 'AGCOptimWrapper'
    assert [h.type for h in shipped.custom_hooks][-1] == 'EMAHook'
    no_ema = resolved(distilled, False, True)
    assert 'EMAHook' not in [h.type for h in no_ema.custom_hooks]
    assert no_ema.custom_hooks == shipped.custom_hooks[:-1]
    plain = resolved(distilled, False, False)
    assert plain.optim_wrapper.type == 'OptimWrapper'
    assert plain.optim_wrapper.clip_grad is None
    for cfg in (no_ema, plain):  # model, data and schedule as shipped
        for key in ('model', 'train_dataloader', 'param_scheduler', 'train_cfg', 'randomness'):
            assert cfg[key] == shipped[key], key
    assert plain.optim_wrapper.optimizer == shipped.optim_wrapper.optimizer


def test_curve_and_table_from_logged_scalars(tmp_path):
    run_dir = tmp_path / 'student' / '20260101_000000' / 'vis_data'
    run_dir.mkdir(parents=True)
    records = [{'loss': 1.0, 'step': 5},
               {'accuracy/top1': 50.0, 'accuracy/top1_origin': 80.0, 'step': 2},
               {'accuracy/top1': 97.5, 'accuracy/top1_origin': 96.0, 'step': 4}]
    (run_dir / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in records))
    curve = val_curve(str(tmp_path / 'student'))
    assert curve == [dict(epoch=2, top1=50.0, top1_origin=80.0),
                     dict(epoch=4, top1=97.5, top1_origin=96.0)]
    run = dict(label='distilled', variant=(True, True, True), seconds=10.0, curve=curve)
    lines = summary_lines(dict(top1=98.0, seconds=None, epochs=8), [run], dict(val=359), 'x')
    assert '| LeViT-128S | hard distillation | yes | yes | 97.50 | 96.00 | 4 | 10 s |' in lines
    assert '| distilled | 50.00 / 80.00 | 97.50 / 96.00 |' in lines


def test_ablation_refuses_single_switches(tmp_path):
    result = run_py([osp.join(REPO, 'tools', 'digits_demo.py'), '--ablation', '--no-ema',
                     '--work-dir', str(tmp_path)])
    assert result.returncode == 2
    assert '--ablation trains every combination of AGC and EMA' in result.stderr
