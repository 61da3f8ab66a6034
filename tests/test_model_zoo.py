"""Model-zoo names load weights through mmengine's URL -> cache path, offline too."""
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import REPO, randomize_, run_py
from PIL import Image

URL = ('https://download.openmmlab.com/mmclassification/v0/levit/'
       'levit-128s_3rdparty_in1k_20230117-e9fbd209.pth')
# A closed local port as proxy: any download attempt fails at once, as when offline.
OFFLINE = {'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9',
           'HTTP_PROXY': 'http://127.0.0.1:9', 'HTTPS_PROXY': 'http://127.0.0.1:9',
           'no_proxy': '', 'NO_PROXY': ''}


def make_checkpoint(path, seed=3):
    from mmpretrain import get_model
    model = randomize_(get_model('levit-128s_3rdparty_in1k'), seed=seed)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return model


@pytest.fixture(scope='module')
def square_image(tmp_path_factory):
    """A real photo cropped square, so resize/crop sizes are unambiguous."""
    img = Image.open(f'{REPO}/demo/chelsea.jpg').convert('RGB')
    side = min(img.size)
    path = tmp_path_factory.mktemp('img') / 'chelsea_square.png'
    img.crop((0, 0, side, side)).save(path)
    return str(path)


def reference_scores(model, image_path):
    """Softmax scores computed without mmpretrain's inferencer: PIL resize + crop."""
    img = Image.open(image_path).convert('RGB').resize((256, 256), Image.BICUBIC)
    arr = np.asarray(img, dtype=np.float32)[16:240, 16:240]
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    x = torch.from_numpy(((arr - mean) / std).transpose(2, 0, 1).copy())[None]
    model.eval()
    with torch.no_grad():
        return model(x, mode='tensor').softmax(-1)[0]


def test_inference_model_from_cache_offline(tmp_path, square_image):
    torch_home = tmp_path / 'torch'
    cache = torch_home / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    model = make_checkpoint(cache / osp.basename(URL))
    code = (
        'import json, sys, levit_mm\n'
        'from mmpretrain import inference_model\n'
        f'r = inference_model("levit-128s_3rdparty_in1k", {square_image!r})\n'
        'print("RESULT", json.dumps({"label": int(r["pred_label"]), '
        '"score": float(r["pred_score"]), "cls": r["pred_class"]}))\n')
    proc = run_py(['-c', code], env=dict(OFFLINE, TORCH_HOME=str(torch_home)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    result = json.loads(proc.stdout.split('RESULT', 1)[1])
    expected = reference_scores(model, square_image)
    assert result['label'] == int(expected.argmax())
    assert result['score'] == pytest.approx(float(expected.max()), abs=2e-3)
    assert isinstance(result['cls'], str) and result['cls']


def test_offline_without_cache_says_what_to_do(tmp_path):
    code = ('import levit_mm\nfrom mmpretrain import get_model\n'
            'get_model("levit-128s_3rdparty_in1k", pretrained=True)\n')
    proc = run_py(['-c', code], env=dict(OFFLINE, TORCH_HOME=str(tmp_path)))
    assert proc.returncode != 0
    err = proc.stderr
    assert 'CheckpointUnavailableError' in err
    assert URL in err
    assert str(tmp_path / 'hub' / 'checkpoints' / osp.basename(URL)) in err
    assert 'pretrained=' in err
    # the chained socket traceback is suppressed
    assert 'During handling of the above exception' not in err


def test_pretrained_local_path(tmp_path):
    from mmpretrain import get_model
    ref = make_checkpoint(tmp_path / 'mine.pth', seed=5)
    model = get_model('levit-128s_3rdparty_in1k', pretrained=str(tmp_path / 'mine.pth'))
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


def test_demo_reports_missing_weights_in_one_line(tmp_path):
    proc = run_py(['demo/image_demo.py', 'demo/chelsea.jpg', 'levit-128s_3rdparty_in1k'],
                  env=dict(OFFLINE, TORCH_HOME=str(tmp_path)))
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(lines) == 1 and URL in lines[0] and 'Traceback' not in proc.stderr


def test_demo_top5_from_cached_weights(tmp_path):
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    make_checkpoint(cache / osp.basename(URL))
    proc = run_py(['demo/image_demo.py', 'demo/chelsea.jpg'],
                  env=dict(OFFLINE, TORCH_HOME=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [line for line in proc.stdout.splitlines() if line.strip()[:2] in
             ('1.', '2.', '3.', '4.', '5.')]
    assert len(ranks) == 5
    scores = [float(line.split()[-1]) for line in ranks]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
