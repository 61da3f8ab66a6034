"""Deploy form: a training-form model folded for inference, and compiled.

* :func:`switch_to_deploy` folds a built model in place (every module that has a
  ``switch_to_deploy``: the backbone's Conv/Linear+BN pairs, the head's BN+Linear pairs and
  its two heads merged into one Linear);
* checkpoints fold too: :func:`levit_mm.folding.fold_state_dict` turns a training-form
  state dict into the deploy layout (``tools/model_converters/levit_reparameterize.py``),
  and a deployed backbone or head applies it as it loads one, so a config with
  ``deploy=True`` takes either form.  Both routes share the arithmetic in
  :mod:`levit_mm.folding`, and ``tests/test_deploy.py`` checks they agree;
* :func:`use_fastest_form` puts the backbone in whichever of its two forms (linear or
  LeViT-C conv, one set of weights) runs faster on the input's device, by timing both.
"""
import copy
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn

from ..backbones import LeViT
from ..forms import FORMS
from .timing import time_interleaved

#: the forms' timings measured in this process: (backbone arch, deploy, device, input
#: shape, dtype, threads) -> {form: best seconds}
_MEASURED_FORMS: Dict[tuple, Dict[str, float]] = {}


class LogitsWrapper(nn.Module):
    """A model as a plain ``x -> tensor`` module, for export, compile and timing.

    ``forward_fn(model, x)`` says how; the default is an mmpretrain classifier's logits
    (``model(x, mode='tensor')``, the last output if it gives several).
    """

    def __init__(self, model: nn.Module,
                 forward_fn: Optional[Callable[[nn.Module, torch.Tensor], torch.Tensor]] = None):
        super().__init__()
        self.model = model
        self.forward_fn = forward_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.forward_fn is not None:
            return self.forward_fn(self.model, x)
        out = self.model(x, mode='tensor')
        return out[-1] if isinstance(out, (tuple, list)) else out


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Fold every sub-module that offers ``switch_to_deploy`` (backbone, head) in place."""
    for module in list(model.modules()):
        if hasattr(module, 'switch_to_deploy'):
            module.switch_to_deploy()
    return model


def compile_for_inference(model: nn.Module, cuda_graphs: bool = False):
    """``torch.compile`` a deployed model for inference, weights frozen, on the CPU or a
    GPU, in whatever dtype the model has (``.half()``/``.to(torch.bfloat16)`` first).

    Inductor fuses what eager mode runs as separate passes (bias + softmax, the
    activations, residual adds, the head split/merge copies) around the GEMMs: +4 to +8%
    over eager at batch 16 on one CPU core (``tools/analysis_tools/benchmark.py``).  The
    graph is compiled on the first call, which must run without autograd
    (``torch.inference_mode()`` or ``torch.no_grad()``) for the weights to be frozen into
    it; each new input shape compiles again (Dynamo allows
    ``torch._dynamo.config.recompile_limit`` shapes per forward function, counted over all
    compiled models in the process; ``torch._dynamo.reset()`` starts afresh).  Weights are
    read at compile time, as constants of the graph (each attention bias, a gather of
    frozen weights, is folded into one): compile after loading a checkpoint, not before.

    ``cuda_graphs=True`` (CUDA; ignored on the CPU) also records the compiled forward as a
    CUDA graph and replays it, which removes the launch overhead that dominates small
    batches.  The returned callable marks a new graph step before every call; the output
    tensor of a call lives in the graph's memory pool and is overwritten by the next
    call, so ``.clone()`` it to keep it.  The biases, being constants of the graph, cannot
    be overwritten by a replay.
    """
    from torch._inductor import config as inductor_config
    model.eval()
    compiled = torch.compile(model, fullgraph=True, dynamic=False,
                             options={'triton.cudagraphs': cuda_graphs})
    seen = set()

    def run(*args, **kwargs):
        if cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        signature = _signature(args, kwargs)
        if signature in seen:
            return compiled(*args, **kwargs)
        # A call with new inputs compiles.  Dynamo makes the weights constants only under
        # the process-wide freezing flag (``options={'freezing': True}`` reaches Inductor
        # but not Dynamo, and then freezes nothing), so such a call runs under it.
        with inductor_config.patch(freezing=True):
            out = compiled(*args, **kwargs)
        seen.add(signature)
        return out

    return run


def _signature(args, kwargs) -> tuple:
    """What a ``dynamic=False`` graph is specialised on: shapes, dtypes and devices of the
    tensor arguments, and the autograd mode."""
    names = tuple(sorted(kwargs))
    values = list(args) + [kwargs[name] for name in names]
    return (torch.is_grad_enabled(), torch.is_inference_mode_enabled(), names) + tuple(
        (tuple(v.shape), v.dtype, v.device) if isinstance(v, torch.Tensor) else repr(v)
        for v in values)


def _backbones(model: nn.Module):
    found = [m for m in model.modules() if isinstance(m, LeViT)]
    if not found:
        raise ValueError(f'{type(model).__name__} holds no LeViT backbone to choose a form '
                         'for.')
    return found


@torch.no_grad()
def time_forms(model: nn.Module, example: torch.Tensor, iters: int = 5,
               warmup: int = 2) -> Dict[str, float]:
    """Best time (s) of ``model(example)`` with its LeViT backbone in each form.

    The other form runs as a copy (its pointwise weights reshaped); the timed calls of the
    two alternate, round by round, so a busy machine slows both alike.  Eval mode; the
    model is left as it was.
    """
    current = _backbones(model)[0].form
    models = {current: model}
    for form in FORMS:
        if form != current:
            models[form] = copy.deepcopy(model)
            for backbone in _backbones(models[form]):
                backbone.to_form(form)
    was_training = model.training
    for m in models.values():
        m.eval()
    best = time_interleaved(models, example, warmup, iters, example.device)
    model.train(was_training)
    return best


def use_fastest_form(model: nn.Module, example: torch.Tensor, iters: int = 5
                     ) -> Tuple[str, Dict[str, float]]:
    """Switch the model's LeViT backbone(s), in place, to the form that runs ``example``
    faster on its device; returns ``(form, {form: seconds})``.

    The choice is measured (:func:`time_forms`), once per process for each backbone
    arch, deploy state, device, input shape, dtype and thread count, so call it with the
    batch and size you will run, after :func:`switch_to_deploy` (folding changes the
    balance) and before :func:`compile_for_inference`.
    """
    backbones = _backbones(model)
    first = backbones[0]
    key = (repr(first.arch), first.deploy, str(example.device), tuple(example.shape),
           example.dtype, torch.get_num_threads())
    timings = _MEASURED_FORMS.get(key)
    if timings is None:
        timings = _MEASURED_FORMS[key] = time_forms(model, example, iters)
    form = min(timings, key=timings.get)
    for backbone in backbones:
        backbone.to_form(form)
    return form, dict(timings)
