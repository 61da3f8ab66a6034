"""Runs that meet an unreadable image: stop with one line, or leave it out and say so.

A large dataset often holds a few broken files (truncated copies, zero-byte files).  By
default a run stops at the first one with one line naming it and how many images were done
before it; with ``skip_bad_images = True`` (tools/train.py and tools/test.py:
``--skip-bad-images``) each one is logged and left out, and the metrics say over how many
images they were computed (``images/evaluated``) and how many were skipped
(``images/skipped``), so the denominator is never hidden.

:func:`guard_image_loading` rewrites a classification config for this (the tools call it);
it opts in through separately named components, so importing levit_mm changes nothing for
other models: :class:`~levit_mm.datasets.checked_loading.CheckedLoadImageFromFile` marks an
unreadable file with a placeholder, :class:`UnreadableImageHook` stops or logs in the main
process, and :class:`SkipUnreadableImages` keeps the marked samples out of the metrics.  In
training with ``skip_bad_images`` a bad file is not marked but replaced by another sample
(mmengine's refetch), with a warning.
"""
from typing import Any, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS, METRICS

from ..datasets.checked_loading import UNREADABLE_KEY, UnreadableImageError

SKIP_HINT = ('to leave unreadable images out, set skip_bad_images = True in the config '
             '(tools/train.py, tools/test.py: --skip-bad-images)')
WHAT = dict(train='training', val='validation', test='test')


@HOOKS.register_module()
class UnreadableImageHook(Hook):
    """Meets the samples marked by ``CheckedLoadImageFromFile(on_error='mark')`` before the
    model does: stops the run naming the file and the images done (``skip=False``), or
    logs each one (``skip=True``; :class:`SkipUnreadableImages` then leaves them out)."""

    priority = 'VERY_HIGH'

    def __init__(self, skip: bool = False):
        self.skip = skip
        self.done = dict(train=0, val=0, test=0)

    def before_val_epoch(self, runner) -> None:
        self.done['val'] = 0

    def before_test_epoch(self, runner) -> None:
        self.done['test'] = 0

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._meet(runner, 'train', data_batch)

    def before_val_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._meet(runner, 'val', data_batch)

    def before_test_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._meet(runner, 'test', data_batch)

    def _meet(self, runner, mode: str, data_batch) -> None:
        samples = data_batch.get('data_samples') or [] if isinstance(data_batch, dict) else []
        for index, sample in enumerate(samples):
            cause = sample.get(UNREADABLE_KEY, None) if hasattr(sample, 'get') else None
            if cause is None:
                continue
            path = sample.get('img_path', '?')
            if self.skip:
                runner.logger.warning(f'skipped unreadable image {path!r}: {cause}')
                continue
            done = self.done[mode] + index
            total = '' if mode == 'train' else (
                f' of the {len(getattr(runner, f"{mode}_dataloader").dataset)}')
            raise UnreadableImageError(
                f'cannot read image {path!r}: {cause}; stopped after {done}{total} '
                f'{WHAT[mode]} images; {SKIP_HINT}.')
        self.done[mode] += len(samples)


@METRICS.register_module()
class SkipUnreadableImages(BaseMetric):
    """The metrics of ``metric`` (a metric config or a list of them) over the readable
    images only, plus ``images/evaluated`` and ``images/skipped``.  (Not ``metrics``: a
    config with that key is taken for an ``Evaluator`` by mmengine's Runner.)

    Results are kept one entry per sample, a marker for a skipped one, so that the samples
    of all ranks are gathered in dataset order (mmengine interleaves the ranks' results)
    and the padding of the last batch is cut at the right place.  The wrapped metrics see
    one sample at a time and compute as they would alone, under their own prefixes.
    """

    def __init__(self, metric, collect_device: str = 'cpu', collect_dir: Optional[str] = None):
        # keys keep the wrapped metrics' own prefixes ('accuracy/top1'), so none of ours
        super().__init__(collect_device, prefix='-', collect_dir=collect_dir)
        self.prefix = None
        metrics = list(metric) if isinstance(metric, (list, tuple)) else [metric]
        self.metrics: List[BaseMetric] = [
            METRICS.build(m) if isinstance(m, dict) else m for m in metrics]

    @BaseMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = dataset_meta
        for metric in self.metrics:
            metric.dataset_meta = dataset_meta

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if sample.get(UNREADABLE_KEY) is not None:
                self.results.append({UNREADABLE_KEY: sample.get('img_path')})
                continue
            entry = []
            for metric in self.metrics:
                start = len(metric.results)
                metric.process(data_batch, [sample])
                entry.append(metric.results[start:])
                del metric.results[start:]
            self.results.append(entry)

    def compute_metrics(self, results: list) -> dict:
        good = [r for r in results if not isinstance(r, dict)]
        out = {}
        for i, metric in enumerate(self.metrics):
            values = metric.compute_metrics([x for entry in good for x in entry[i]])
            out.update({f'{metric.prefix}/{k}' if metric.prefix else k: v
                        for k, v in values.items()})
        out.update({'images/evaluated': len(good), 'images/skipped': len(results) - len(good)})
        return out


def guard_image_loading(cfg) -> bool:
    """Make the runs of a classification config name an unreadable image (stop, or with
    ``cfg.skip_bad_images`` skip and count it), in place.

    Every ``LoadImageFromFile`` of a pipeline that ends in mmpretrain's ``PackInputs``
    becomes ``CheckedLoadImageFromFile`` (training with ``skip_bad_images``: ``'skip'``,
    otherwise ``'mark'``), ``PackInputs`` carries the mark, :class:`UnreadableImageHook` is
    added, and with ``skip_bad_images`` the val/test evaluators are wrapped in
    :class:`SkipUnreadableImages`.  Other pipelines (detection, segmentation) are left as
    they are.  Returns whether anything was guarded."""
    skip = bool(cfg.get('skip_bad_images', False))
    guarded = False
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader', None)
        on_error = 'skip' if skip and split == 'train' else 'mark'
        if not loader or not _guard_dataset(loader.get('dataset'), on_error):
            continue
        guarded = True
        evaluator = cfg.get(f'{split}_evaluator', None)
        if skip and split != 'train' and evaluator:
            cfg[f'{split}_evaluator'] = _skipping(evaluator)
    if guarded:
        hooks = [h for h in cfg.get('custom_hooks', None) or []
                 if _type(h) != 'UnreadableImageHook']
        cfg.custom_hooks = hooks + [dict(type='UnreadableImageHook', skip=skip)]
    elif skip:
        raise ValueError('skip_bad_images: the config has no classification pipeline '
                         '(LoadImageFromFile ... PackInputs) whose images could be skipped.')
    return guarded


def _type(transform) -> str:
    kind = transform.get('type', '') if isinstance(transform, dict) else ''
    return kind.split('.')[-1] if isinstance(kind, str) else getattr(kind, '__name__', '')


def _guard_dataset(dataset, on_error: str) -> bool:
    """Guard the pipelines of ``dataset`` and of the datasets it wraps."""
    if not isinstance(dataset, dict):
        return False
    guarded = _guard_pipeline(dataset.get('pipeline'), on_error)
    inner = dataset.get('dataset', None) or dataset.get('datasets', None) or []
    for child in [inner] if isinstance(inner, dict) else inner:
        guarded = _guard_dataset(child, on_error) or guarded
    return guarded


def _guard_pipeline(pipeline, on_error: str) -> bool:
    from mmpretrain.datasets.transforms import PackInputs
    if not isinstance(pipeline, list) or 'PackInputs' not in map(_type, pipeline):
        return False
    guarded = False
    for transform in pipeline:
        kind = _type(transform)
        if kind == 'LoadImageFromFile':
            transform.update(type='CheckedLoadImageFromFile', on_error=on_error)
        elif kind == 'PackInputs':
            keys = tuple(transform.get('meta_keys', PackInputs.DEFAULT_META_KEYS))
            transform['meta_keys'] = keys + (UNREADABLE_KEY, ) * (UNREADABLE_KEY not in keys)
        guarded = guarded or kind in ('LoadImageFromFile', 'CheckedLoadImageFromFile')
    return guarded


def _skipping(evaluator):
    """``evaluator`` (a metric config, a list of them, or an Evaluator config) with its
    metrics wrapped in :class:`SkipUnreadableImages` (once)."""
    if isinstance(evaluator, dict) and 'metrics' in evaluator:  # an Evaluator config
        return dict(evaluator, metrics=_skipping(evaluator['metrics']))
    if isinstance(evaluator, dict) and _type(evaluator) == 'SkipUnreadableImages':
        return evaluator
    return dict(type='SkipUnreadableImages', metric=evaluator)
