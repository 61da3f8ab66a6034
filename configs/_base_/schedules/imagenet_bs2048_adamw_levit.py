# LeViT's official schedule (facebookresearch/LeViT main.py defaults; DeiT's, plus AGC):
# AdamW, lr 5e-4 per 512 images (2e-3 for 8 x 256), eps 1e-8, weight decay 0.025 except on
# 1-D tensors (norms, biases) and attention-bias tables, adaptive gradient clipping 0.01,
# 5 warm-up epochs from 1e-6, cosine decay to 1e-5, 1000 epochs. The lr changes once per
# epoch, as timm's scheduler does there. The README's recipe table lists every setting.
optim_wrapper = dict(
    # AGC (levit_mm/engine/agc.py): --clip-grad 0.01 --clip-mode agc, every parameter.
    type='AGCOptimWrapper',
    clip_grad=dict(type='agc', clip_factor=0.01, eps=1e-3),
    optimizer=dict(
        type='AdamW', lr=5e-4 * 2048 / 512, weight_decay=0.025, eps=1e-8,
        betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'.attention_biases': dict(decay_mult=0.0)}),
)

# Epoch e < 5 trains at 1e-6 + e / 5 * (peak - 1e-6), as timm's warm-up (mmengine's LinearLR
# reaches its end value at its last epoch, `end - 1` = 5); cosine decay from epoch 6.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 2e-3, by_epoch=True, begin=0, end=6),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=6),
]

train_cfg = dict(by_epoch=True, max_epochs=1000, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr above is for 2048 images per step; `--auto-scale-lr` rescales it to the real batch.
auto_scale_lr = dict(base_batch_size=2048)
