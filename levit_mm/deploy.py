"""Deploy form: a training-form model folded for inference, and compiled.

* :func:`switch_to_deploy` folds a built model in place (every module that has a
  ``switch_to_deploy``: the backbone's Conv/Linear+BN pairs, the head's BN+Linear pairs and
  its two heads merged into one Linear);
* checkpoints fold too: :func:`levit_mm.folding.fold_state_dict` turns a training-form
  state dict into the deploy layout (``tools/model_converters/levit_reparameterize.py``),
  and a deployed backbone or head applies it as it loads one, so a config with
  ``deploy=True`` takes either form.  Both routes share the arithmetic in
  :mod:`levit_mm.folding`, and ``tests/test_deploy.py`` checks they agree.
"""
import torch
import torch.nn as nn

from .folding import DeployConversionError, fold_state_dict  # noqa: F401  (public names)


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
    compiled models in the process; ``torch._dynamo.reset()`` starts afresh).  Weights and
    attention biases are read at compile time, as constants of the graph: compile after
    loading a checkpoint, not before.

    ``cuda_graphs=True`` (CUDA; ignored on the CPU) also records the compiled forward as a
    CUDA graph and replays it, which removes the launch overhead that dominates small
    batches.  The returned callable marks a new graph step before every call; the output
    tensor of a call lives in the graph's memory pool and is overwritten by the next
    call, so ``.clone()`` it to keep it.  The biases, being constants of the graph, cannot
    be overwritten by a replay.
    """
    model.eval()
    for module in model.modules():
        if hasattr(module, 'materialise_biases'):
            module.materialise_biases()  # the graph reads cached biases as constants
    compiled = torch.compile(model, fullgraph=True, dynamic=False,
                             options={'freezing': True, 'triton.cudagraphs': cuda_graphs})
    if not cuda_graphs:
        return compiled

    def replay(*args, **kwargs):
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*args, **kwargs)

    return replay
