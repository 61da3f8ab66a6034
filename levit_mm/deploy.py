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


def compile_for_inference(model: nn.Module) -> nn.Module:
    """``torch.compile`` a deployed model for CPU inference, weights frozen.

    Inductor then fuses what eager mode runs as separate passes (bias + softmax, the
    activations, residual adds, the head split/merge copies) around the GEMMs: +4 to +8%
    over eager at batch 16 on one core (``tools/analysis_tools/benchmark.py``).  The
    graph is compiled on the first call, which must run without autograd
    (``torch.inference_mode()`` or ``torch.no_grad()``) for the weights to be frozen into
    it; each new input shape compiles again (Dynamo allows
    ``torch._dynamo.config.recompile_limit`` shapes per forward function, counted over all
    compiled models in the process; ``torch._dynamo.reset()`` starts afresh).  Weights and
    attention biases are read at compile time: compile after loading a checkpoint, not
    before.
    """
    model.eval()
    for module in model.modules():
        if hasattr(module, 'materialise_biases'):
            module.materialise_biases()  # the graph reads cached biases as constants
    return torch.compile(model, fullgraph=True, dynamic=False, options={'freezing': True})
