"""LeViT inside mmdet 3.3.0 and mmsegmentation 1.2.2, built from the shipped config files:
a training step and an inference on a small non-square batch, and the classification
checkpoint loaded through ``init_cfg=dict(type='Pretrained', prefix='backbone.')``."""
import copy
import glob
import math

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm
from conftest import REPO, randomize_
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmengine.utils import import_modules_from_strings

from levit_mm.backbones.layers import residual_branch_norms

DET = f'{REPO}/configs/mmdet'
SEG = f'{REPO}/configs/mmseg'
DET_CONFIGS = {
    'retinanet_levit-128s_fpn_1x_coco.py': ('128s', False),
    'retinanet_levit-256_fpn_1x_coco.py': ('256', False),
    'mask-rcnn_levit-128s_fpn_1x_coco.py': ('128s', True),
    'mask-rcnn_levit-256_fpn_1x_coco.py': ('256', True),
    'retinanet_levit-c-128s_fpn_1x_coco.py': ('128s', False),  # the conv form (LeViT-C)
}
SEG_CONFIG = 'upernet_levit-256_4xb4-160k_ade20k-512x512.py'
# Non-square, not multiples of 16, padded to 64x256: wider than the 224 the bias tables were
# trained for (16 token columns > 14), and small enough for the heads to be quick on CPU.
IMAGE_HW = [(60, 250), (52, 230)]
PADDED_HW = (64, 256)


def load_config(path, checkpoint=None):
    """The config as a runner would see it: its custom_imports done, the backbone's
    pretrained weights replaced by ``checkpoint`` (None: random init, no download)."""
    cfg = Config.fromfile(path)
    import_modules_from_strings(**cfg.custom_imports)
    # Stochastic depth may drop a block for both images of a 2-image batch, which would
    # rightly leave it without gradient; the gradient checks below want every block.
    cfg.model.backbone.drop_path_rate = 0.
    if checkpoint is None:
        cfg.model.backbone.init_cfg = None
    else:
        cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    return cfg


def init_weights(model, checkpoint=None):
    """``model.init_weights()``; without a checkpoint the random backbone stands in for a
    pretrained one, so no residual branch stays at the official init's zero BN weight
    (which would leave those blocks' attention biases without gradient in one step)."""
    model.init_weights()
    if checkpoint is None:
        with torch.no_grad():
            for norm in residual_branch_norms(model.backbone):
                norm.weight.fill_(1.)


def build_detector(path, checkpoint=None):
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    cfg = load_config(path, checkpoint)
    model = MODELS.build(cfg.model)
    init_weights(model, checkpoint)
    return cfg, model


def det_batch(with_mask):
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(2, [(3, h, w) for h, w in IMAGE_HW], num_items=[3, 2],
                          num_classes=80, with_mask=with_mask)


def backbone_grads_ok(model):
    grads = {n: p.grad for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert grads, 'no trainable backbone parameters'
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f'no gradient for {missing[:5]}'
    assert all(torch.isfinite(g).all() for g in grads.values())
    for name, grad in grads.items():
        if 'attention_biases' in name or name.startswith('patch_embed.patch_embed.0'):
            assert grad.abs().sum() > 0, name


@torch.no_grad()
def calibrate_bn(backbone, inputs):
    """Give the randomly initialised backbone BN statistics of real activations, as a
    pretrained one has: with ``norm_eval=True`` the default (0, 1) statistics let the
    activations of an untrained network fade to nothing by the last stage, where attention
    becomes uniform and its bias gets no gradient at all."""
    bns = [m for m in backbone.modules() if isinstance(m, _BatchNorm)]
    norm_eval, backbone.norm_eval = backbone.norm_eval, False
    backbone.train()
    for bn in bns:
        bn.momentum = 1.0  # running statistics := this batch's
    backbone(inputs)
    for bn in bns:
        bn.momentum = 0.1
    backbone.norm_eval = norm_eval


def train_step(model, batch):
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    calibrate_bn(model.backbone, data['inputs'])
    model.train()
    losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss), log_vars
    assert all(math.isfinite(v) for v in log_vars.values()), log_vars
    loss.backward()
    backbone_grads_ok(model)
    return data, log_vars


@pytest.mark.parametrize('name', [
    'retinanet_levit-128s_fpn_1x_coco.py',
    pytest.param('retinanet_levit-256_fpn_1x_coco.py', marks=pytest.mark.slow),
    'mask-rcnn_levit-128s_fpn_1x_coco.py',
    pytest.param('mask-rcnn_levit-256_fpn_1x_coco.py', marks=pytest.mark.slow),
    'retinanet_levit-c-128s_fpn_1x_coco.py',
])
def test_detector_trains_and_predicts(name):
    arch, with_mask = DET_CONFIGS[name]
    torch.manual_seed(0)
    cfg, model = build_detector(f'{DET}/{name}')
    assert type(model.backbone).__module__ == 'levit_mm.backbones.levit'
    assert model.backbone.arch['embed_dims'][0] // 2 == cfg.model.neck.in_channels[0]
    batch = det_batch(with_mask)

    data, log_vars = train_step(model, batch)
    assert tuple(data['inputs'].shape[2:]) == PADDED_HW  # padded to a multiple of 64
    assert 'loss_cls' in log_vars and 'loss_bbox' in log_vars
    if with_mask:
        assert {'loss_rpn_cls', 'loss_mask'} <= set(log_vars)

    model.eval()
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        results = model(**data, mode='predict')
    # P3-P7: strides 8 ... 128 of the padded batch
    assert [tuple(f.shape) for f in feats] == [(2, 256, math.ceil(PADDED_HW[0] / s),
                                                math.ceil(PADDED_HW[1] / s))
                                               for s in (8, 16, 32, 64, 128)]
    assert len(results) == 2
    for result, (h, w) in zip(results, IMAGE_HW):
        pred = result.pred_instances
        n = len(pred)
        assert pred.bboxes.shape == (n, 4) and pred.scores.shape == (n, )
        assert pred.labels.shape == (n, )
        assert n <= cfg.model.test_cfg.get('max_per_img', cfg.model.test_cfg.get(
            'rcnn', {}).get('max_per_img'))
        if with_mask:
            assert pred.masks.shape == (n, h, w)


@pytest.mark.slow
def test_segmentor_trains_and_predicts():
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    cfg = load_config(f'{SEG}/{SEG_CONFIG}')
    # One CPU process: SyncBN in the heads would have nothing to sync; the crop is made
    # small (and non-square) to keep the test fast.
    cfg.model.decode_head.norm_cfg = cfg.model.auxiliary_head.norm_cfg = dict(type='BN')
    cfg.model.data_preprocessor.size = PADDED_HW
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    init_weights(model)
    assert type(model.backbone).__module__ == 'levit_mm.backbones.levit'

    g = torch.Generator().manual_seed(0)
    samples, inputs = [], []
    for h, w in IMAGE_HW:
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, h, w), generator=g))
        samples.append(sample)
    batch = {'inputs': inputs, 'data_samples': samples}

    data, log_vars = train_step(model, batch)
    assert tuple(data['inputs'].shape) == (2, 3) + PADDED_HW
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(log_vars)

    model.eval()
    feats = model.extract_feat(data['inputs'])  # the padded training batch
    assert [tuple(f.shape[1:]) for f in feats] == [(128, 8, 32), (256, 4, 16),
                                                   (384, 2, 8), (512, 1, 4)]
    # mmseg's test-time preprocessor takes a batch of equal sizes: one image at a time
    for image, sample, (h, w) in zip(inputs, samples, IMAGE_HW):
        one = {'inputs': [image], 'data_samples': [copy.deepcopy(sample)]}
        data = model.data_preprocessor(one, False)
        with torch.no_grad():
            result, = model(**data, mode='predict')
        assert result.seg_logits.data.shape == (150, h, w)
        assert result.pred_sem_seg.data.shape == (1, h, w)
        assert result.pred_sem_seg.data.max() < 150


def test_pretrained_classification_checkpoint_initialises_backbone(tmp_path):
    """init_cfg Pretrained with prefix='backbone.' reads a classifier checkpoint (with
    mmpretrain's fixed-grid index buffers), every backbone tensor lands, and the detector's
    backbone then equals the classifier's backbone at a non-square size."""
    from mmpretrain.models.backbones.levit import LeViT as MMPretrainLeViT
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    init_default_scope('mmpretrain')
    classifier = PRETRAIN_MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='LeViT', arch='128s', out_indices=(2, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=1000, in_channels=384)))
    randomize_(classifier, seed=7).eval()
    state = classifier.state_dict()
    # mmpretrain's released files also carry the index buffers of the fixed 14x14 grid
    reference = MMPretrainLeViT('128s')
    for key, value in reference.state_dict().items():
        if key.endswith('attention_bias_idxs'):
            state['backbone.' + key] = value
    path = tmp_path / 'levit-128s_cls.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)

    _, detector = build_detector(f'{DET}/retinanet_levit-128s_fpn_1x_coco.py', path)
    loaded = detector.backbone.state_dict()
    expected = classifier.backbone.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key

    x = torch.randn(1, 3, 150, 260)
    detector.backbone.eval()
    classifier.backbone.out_indices = [0, 1, 2]
    with torch.no_grad():
        ours = detector.backbone(x)[1:]
        theirs = classifier.backbone(x)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_conv_form_detector_takes_the_linear_checkpoint(tmp_path):
    """The LeViT-C detector config loads a linear-form classification checkpoint (its
    pointwise weights reshaped) and its backbone computes what the linear one does."""
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    classifier = randomize_(PRETRAIN_MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='LeViT', arch='128s', out_indices=(0, 1, 2)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=1000, in_channels=384))), seed=8).eval()
    path = tmp_path / 'levit-128s_cls.pth'
    torch.save({'state_dict': classifier.state_dict(), 'meta': {}}, path)
    _, detector = build_detector(f'{DET}/retinanet_levit-c-128s_fpn_1x_coco.py', path)
    assert detector.backbone.form == 'conv'
    x = torch.randn(1, 3, 150, 260)
    with torch.no_grad():
        ours = detector.backbone.eval()(x)[1:]
        theirs = classifier.backbone(x)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- normalisation
ALL_DENSE = sorted(glob.glob(f'{DET}/*.py') + glob.glob(f'{SEG}/*.py'))


def build_any(path, norm_eval=None):
    """The config's model, random init (no download); mmdet or mmseg by folder."""
    cfg = Config.fromfile(path)
    import_modules_from_strings(**cfg.custom_imports)
    cfg.model.backbone.init_cfg = None
    cfg.model.pop('pretrained', None)
    if norm_eval is not None:
        cfg.model.backbone.norm_eval = norm_eval
    scope = 'mmseg' if path.startswith(SEG) else 'mmdet'
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS'])
    torch.manual_seed(0)
    model = registry.MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


@pytest.mark.parametrize('path', ALL_DENSE, ids=lambda p: p.split('/configs/')[1])
def test_no_norm_learns_batch_statistics_of_a_few_images(path):
    """In training mode no BatchNorm normalises with the statistics of the batch: the
    backbone's are frozen (norm_eval), the necks and heads have none or GN. The exception
    is upstream's SyncBN in a multi-GPU config (it pools the batches of every GPU)."""
    from torch.nn import SyncBatchNorm
    _, model = build_any(path)
    model.train()
    assert model.backbone.norm_eval
    learning = [name for name, m in model.named_modules()
                if isinstance(m, _BatchNorm) and m.training]
    synced = [name for name in learning
              if isinstance(model.get_submodule(name), SyncBatchNorm)]
    if synced:
        assert 'xb' in path.rsplit('/', 1)[1], f'SyncBN in a one-process config: {synced}'
    assert learning == synced, learning


def random_batch(cfg, path, g):
    """Two 128x128 noise images and random targets of the config's classes."""
    hw = [(128, 128), (128, 128)]
    if path.startswith(DET):
        from mmdet.testing import demo_mm_inputs
        head = cfg.model.get('bbox_head') or cfg.model.roi_head.bbox_head
        return demo_mm_inputs(2, [(3, h, w) for h, w in hw], num_items=[2, 2],
                              num_classes=head.num_classes, with_mask='roi_head' in cfg.model)
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    for h, w in hw:
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, cfg.model.decode_head.num_classes, (1, h, w), generator=g))
        samples.append(sample)
    return {'inputs': inputs, 'data_samples': samples}


def flat_outputs(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for item in out for t in flat_outputs(item)]


@pytest.mark.parametrize('name, norm_eval', [
    ('mmdet/retinanet_levit-128s_fpn_digit-scenes.py', None),
    ('mmseg/fpn_levit-128s_digit-scenes.py', None),
    ('mmdet/retinanet_levit-128s_fpn_1x_coco.py', None),
    ('mmdet/retinanet_levit-128s_fpn_digit-scenes.py', False),  # the old setting
])
def test_eval_output_equals_train_output_after_steps_at_batch_2(name, norm_eval):
    """After three training steps at batch 2, the model's output on a training image is the
    same in eval mode as in training mode. With the old ``norm_eval=False`` the BNs learn
    the batches' statistics and their running averages miss one image's: the outputs then
    differ (the last case; it shows the check catches the bug)."""
    path = f'{REPO}/configs/{name}'
    cfg, model = build_any(path, norm_eval)
    g = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(3):
        data = model.data_preprocessor(random_batch(cfg, path, g), True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    image = data['inputs'][:1]
    model.train()
    for module in model.modules():  # only the norms may differ: no dropout, no drop path
        if isinstance(module, torch.nn.modules.dropout._DropoutNd) or getattr(
                module, 'drop_path_rate', 0):
            module.eval()
    with torch.no_grad():
        trained = flat_outputs(model._forward(image))
        evaluated = flat_outputs(model.eval()._forward(image))
    scale = max(t.abs().max() for t in trained)
    worst = max((a - b).abs().max() for a, b in zip(trained, evaluated)) / scale
    if norm_eval is False:
        assert worst > 0.1, worst
    else:
        assert worst < 1e-5, worst
