"""demo/image_demo.py on the bundled photo with a generated checkpoint: the top-k equals
mmpretrain's own inferencer on the file, and --show-dir writes the annotated image.
(tests/test_model_zoo.py covers the zoo-name and offline paths.)"""
import numpy as np
import torch
from conftest import REPO, randomize_
from PIL import Image
from tool_loading import load_tool, run_tool_cli

IMAGE = f'{REPO}/demo/chelsea.jpg'
CONFIG = 'configs/levit/levit-128s_8xb256_in1k.py'


def test_demo_topk_and_show_dir(tmp_path, capsys):
    from mmpretrain import ImageClassificationInferencer, get_model
    model = randomize_(get_model('levit-128s_3rdparty_in1k'), seed=11)
    ckpt = tmp_path / 'levit128s.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)

    demo = load_tool('demo/image_demo.py')
    code, stdout, stderr = run_tool_cli(demo, [IMAGE, CONFIG, '--checkpoint', str(ckpt),
                                               '--topk', '3', '--show-dir',
                                               str(tmp_path / 'show')], capsys)
    assert code == 0, stderr
    ranks = [line.split() for line in stdout.splitlines() if line.strip()[:2] in
             ('1.', '2.', '3.')]
    assert len(ranks) == 3

    # Reference: mmpretrain's inferencer reading the file itself (OpenCV decoding).
    inferencer = ImageClassificationInferencer(model.eval())
    reference = inferencer(IMAGE)[0]['pred_scores']
    order = reference.argsort()[::-1][:3]
    assert inferencer.classes and len(inferencer.classes) == 1000
    for (rank, *name, score), idx in zip(ranks, order):
        assert abs(float(score) - reference[idx]) < 2e-3
        assert ' '.join(name) == inferencer.classes[idx]

    out = tmp_path / 'show' / 'chelsea.png'
    assert out.exists() and not list((tmp_path / 'show').glob('*.tmp*'))
    drawn = np.asarray(Image.open(out).convert('RGB')).astype(int)
    photo = np.asarray(Image.open(IMAGE).convert('RGB')).astype(int)
    assert drawn.shape == photo.shape  # same size as the input
    # The label box is drawn in the top-left corner; the rest is the photo.
    assert np.abs(drawn[:25, :200] - photo[:25, :200]).mean() > 20
    assert np.abs(drawn[150:, :] - photo[150:, :]).max() <= 12  # JPEG vs PNG only
