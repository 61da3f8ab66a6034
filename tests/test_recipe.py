"""The five ImageNet configs carry the official LeViT training recipe, row by row.

Every expected value below is written here as a fact of the official code
(facebookresearch/LeViT: ``main.py`` argparse defaults and loop, ``levit.py``
``specification``, ``datasets.py``, ``samplers.py``, ``engine.py``; timm's defaults where the
official code passes none), never read back from the configs.  Where a row is behaviour
rather than a number (which tensors are exempt from weight decay, the lr of every epoch),
the test builds what the config describes and checks the behaviour.
"""
import math

import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.registry import init_default_scope

ARCHS = ('128s', '128', '192', '256', '384')

# ---------------------------------------------------------------- official facts
GPUS, BATCH_PER_GPU = 8, 256               # README: 8 GPUs; main.py --batch-size 256
LR_PER_512 = 5e-4                          # --lr, scaled lr * batch * world / 512
OPT_EPS, BETAS = 1e-8, (0.9, 0.999)        # --opt-eps; --opt-betas None -> AdamW default
WEIGHT_DECAY = 0.025                       # --weight-decay
WARMUP_EPOCHS, WARMUP_LR, MIN_LR = 5, 1e-6, 1e-5  # --warmup-epochs, --warmup-lr, --min-lr
EPOCHS = 1000                              # --epochs
EMA_DECAY = 0.99996                        # --model-ema (on), --model-ema-decay
AGC_CLIP, AGC_EPS = 0.01, 1e-3             # --clip-grad 0.01 --clip-mode agc; timm eps
REPEATS = 3                                # RASampler: each index 3 times
RAND_AUGMENT = dict(n=2, m=9, mstd=0.5, max_level=10)  # --aa rand-m9-mstd0.5-inc1
RE_PROB = 0.25                             # --reprob (--remode pixel, --recount 1)
MIXUP, CUTMIX, SWITCH_PROB, MIX_PROB = 0.8, 1.0, 0.5, 1.0
SMOOTHING = 0.1                            # --smoothing
DROP_PATH = {'128s': 0, '128': 0, '192': 0, '256': 0, '384': 0.1}  # levit.specification
TEACHER = 'regnety_160'                    # --teacher-model
TEACHER_URL = 'https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth'
DISTILL_TYPE, DISTILL_ALPHA = 'hard', 0.5  # --distillation-type, --distillation-alpha
INPUT_SIZE = 224                           # --input-size
EVAL_RESIZE = int(256 / 224 * INPUT_SIZE)  # datasets.build_transform: ratio 224/256
SEED = 0                                   # --seed
MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]  # timm IMAGENET_DEFAULT_MEAN/STD
STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


@pytest.fixture(scope='module', params=ARCHS)
def cfg(request):
    cfg = Config.fromfile(f'{REPO}/configs/levit/levit-{request.param}_8xb256_in1k.py')
    cfg.arch = request.param
    return cfg


def by_type(pipeline):
    return {t['type']: t for t in pipeline}


def test_optimizer_lr_and_batch(cfg):
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW'
    assert opt.eps == OPT_EPS and tuple(opt.betas) == BETAS
    assert cfg.train_dataloader.batch_size == BATCH_PER_GPU
    total = GPUS * BATCH_PER_GPU
    assert opt.lr == pytest.approx(LR_PER_512 * total / 512)
    # --auto-scale-lr keeps the same linear rule for any other total batch.
    assert cfg.auto_scale_lr.base_batch_size == total
    assert cfg.optim_wrapper.get('type') != 'AmpOptimWrapper'  # fp32: autocast is off
    assert cfg.randomness.seed == SEED


def test_weight_decay_and_what_is_exempt(cfg):
    """timm's create_optimizer: no decay on 1-D tensors, on ``*.bias`` and on the names the
    model's ``no_weight_decay()`` lists (LeViT: every ``attention_biases``)."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    assert cfg.optim_wrapper.optimizer.weight_decay == WEIGHT_DECAY
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay_of = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
                for p in g['params']}
    names = dict(model.named_parameters())
    assert set(decay_of) == {id(p) for p in names.values()}  # every parameter is trained
    for name, p in names.items():
        exempt = p.ndim <= 1 or name.endswith('.bias') or 'attention_biases' in name
        assert decay_of[id(p)] == (0.0 if exempt else WEIGHT_DECAY), name


def official_lr(epoch: int, peak: float) -> float:
    """timm CosineLRScheduler(t_initial=epochs, lr_min, warmup_t, warmup_lr_init), i.e.
    timm's create_scheduler with the official arguments, at ``epoch``."""
    if epoch < WARMUP_EPOCHS:
        return WARMUP_LR + epoch * (peak - WARMUP_LR) / WARMUP_EPOCHS
    return MIN_LR + 0.5 * (peak - MIN_LR) * (1 + math.cos(math.pi * epoch / EPOCHS))


def test_schedule_warmup_cosine_min_lr_epochs(cfg):
    from mmengine.registry import PARAM_SCHEDULERS
    from timm.scheduler import CosineLRScheduler
    init_default_scope('mmpretrain')
    assert cfg.train_cfg.max_epochs == EPOCHS and cfg.train_cfg.by_epoch
    peak = cfg.optim_wrapper.optimizer.lr
    # The lr changes once per epoch (timm steps its scheduler per epoch, t_in_epochs).
    assert all(s.by_epoch and not s.get('convert_to_iter_based') for s in cfg.param_scheduler)

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=peak)
    schedulers = []
    for s in cfg.param_scheduler:
        s = dict(s)
        s.setdefault('end', EPOCHS)  # what mmengine's Runner does
        schedulers.append(PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=opt)))
    timm_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    timm_sched = CosineLRScheduler(timm_opt, t_initial=EPOCHS, lr_min=MIN_LR,
                                   warmup_t=WARMUP_EPOCHS, warmup_lr_init=WARMUP_LR)
    ours = []
    for epoch in range(EPOCHS):
        ours.append(opt.param_groups[0]['lr'])
        for s in schedulers:
            s.step()
        assert timm_sched._get_lr(epoch)[0] == pytest.approx(official_lr(epoch, peak))
    # Warm-up: linear from 1e-6, epoch by epoch, as timm.
    for epoch in range(WARMUP_EPOCHS):
        assert ours[epoch] == pytest.approx(official_lr(epoch, peak), rel=1e-9), epoch
    # Cosine to 1e-5: mmengine's runs over epochs 6..1000 rather than timm's over 0..1000
    # (timm's warm-up overrides its first 5 epochs); the two differ by < 0.6% of the peak.
    worst = max(abs(ours[e] - official_lr(e, peak)) for e in range(EPOCHS))
    assert worst < 6e-3 * peak
    assert min(ours[WARMUP_EPOCHS:]) >= MIN_LR and ours[-1] == pytest.approx(MIN_LR, rel=1e-3)


def test_ema(cfg):
    (ema, ) = [h for h in cfg.custom_hooks if 'EMAHook' in h['type']]
    assert ema['type'] == 'EMAHook'
    assert 1 - ema['momentum'] == pytest.approx(EMA_DECAY, abs=1e-12)
    assert ema.get('interval', 1) == 1  # timm ModelEma.update after every step
    assert ema['update_buffers']  # ModelEma averages the whole state_dict (BN stats too)
    assert ema['evaluate_on_origin'] and ema.get('evaluate_on_ema', True)
    assert any(h['type'] == 'RNGStateHook' for h in cfg.custom_hooks)


def test_agc(cfg):
    assert cfg.optim_wrapper.type == 'AGCOptimWrapper'
    assert dict(cfg.optim_wrapper.clip_grad) == dict(type='agc', clip_factor=AGC_CLIP,
                                                     eps=AGC_EPS)


def test_repeated_augmentation(cfg):
    sampler = cfg.train_dataloader.sampler
    assert sampler.type == 'RepeatAugSampler'
    assert sampler.num_repeats == REPEATS and sampler.shuffle
    assert cfg.train_dataloader.drop_last  # the official train loader drops the last batch


def test_train_augmentation(cfg):
    pipeline = cfg.train_dataloader.dataset.pipeline
    steps = by_type(pipeline)
    assert [t['type'] for t in pipeline] == [
        'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'RandAugment',
        'RandomErasing', 'PackInputs']  # timm: no ColorJitter once auto_augment is set
    crop = steps['RandomResizedCrop']
    assert crop.scale == INPUT_SIZE and crop.interpolation == 'bicubic'  # --train-interp.
    assert tuple(crop.get('crop_ratio_range', (0.08, 1.0))) == (0.08, 1.0)
    assert steps['RandomFlip'].prob == 0.5 and steps['RandomFlip'].direction == 'horizontal'
    ra = steps['RandAugment']
    assert ra.policies == 'timm_increasing'  # 'inc1'
    assert ra.num_policies == RAND_AUGMENT['n']
    assert ra.magnitude_level == RAND_AUGMENT['m']
    assert ra.magnitude_std == RAND_AUGMENT['mstd']
    assert ra.total_level == RAND_AUGMENT['max_level']
    assert ra.hparams.interpolation == 'bicubic'
    erase = steps['RandomErasing']
    assert erase.erase_prob == RE_PROB
    assert erase.mode == 'rand'  # timm 'pixel': per-pixel normal noise
    assert erase.min_area_ratio == 0.02 and erase.max_area_ratio == pytest.approx(1 / 3)


def test_mixup_cutmix_label_smoothing(cfg):
    augments = cfg.model.train_cfg.augments
    assert [(a.type, a.alpha) for a in augments] == [('Mixup', MIXUP), ('CutMix', CUTMIX)]
    # mmpretrain's RandomBatchAugment draws one of them per batch, uniformly unless `probs`
    # says otherwise: switch probability 0.5, and some mix on every batch (prob 1.0).
    probs = cfg.model.train_cfg.get('probs')
    assert probs is None
    assert 1 / len(augments) == SWITCH_PROB and MIX_PROB == 1.0
    loss = cfg.model.head.loss
    assert loss.type == 'LabelSmoothLoss' and loss.label_smooth_val == SMOOTHING


def test_drop_path_teacher_distillation(cfg):
    assert cfg.model.backbone.drop_path_rate == DROP_PATH[cfg.arch]
    teacher = cfg.model.teacher
    assert teacher.model.type == 'TimmClassifier' and teacher.model.model_name == TEACHER
    assert teacher.checkpoint == TEACHER_URL
    head = cfg.model.head
    assert head.distillation and head.distill_type == DISTILL_TYPE
    assert head.distill_alpha == DISTILL_ALPHA


def test_input_size_eval_crop_and_normalisation(cfg):
    assert cfg.model.backbone.img_size == INPUT_SIZE
    steps = by_type(cfg.test_dataloader.dataset.pipeline)
    resize = steps['ResizeEdge']
    assert resize.scale == EVAL_RESIZE and resize.edge == 'short'
    assert resize.interpolation == 'bicubic'  # transforms.Resize(size, interpolation=3)
    assert steps['CenterCrop'].crop_size == INPUT_SIZE
    assert INPUT_SIZE / resize.scale == 0.875
    assert cfg.data_preprocessor.mean == pytest.approx(MEAN, abs=1e-3)
    assert cfg.data_preprocessor.std == pytest.approx(STD, abs=1e-3)


@pytest.mark.parametrize('name, sampler', [
    ('finetune/levit-128s_ft_custom.py', 'RepeatAugSampler'),
    ('finetune/levit-128s_ft-distill_custom.py', 'RepeatAugSampler'),
    ('digits/levit-128s_digits.py', 'DefaultSampler'),  # no random augmentation to repeat
    ('digits/levit-128s_digits_distill.py', 'DefaultSampler'),
])
def test_finetune_and_digits_configs_use_the_same_components(name, sampler):
    cfg = Config.fromfile(f'{REPO}/configs/levit/{name}')
    assert cfg.optim_wrapper.type == 'AGCOptimWrapper'
    assert cfg.optim_wrapper.clip_grad.clip_factor == AGC_CLIP
    (ema, ) = [h for h in cfg.custom_hooks if h['type'] == 'EMAHook']
    assert ema['update_buffers'] and ema['evaluate_on_origin']
    assert ema['momentum'] > 1 - EMA_DECAY  # a horizon shorter than ImageNet's, for a short run
    assert any(h['type'] == 'RNGStateHook' for h in cfg.custom_hooks)
    assert cfg.train_dataloader.sampler.type == sampler
