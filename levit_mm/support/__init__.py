"""What the tools and tests share and the model does not need: command-line plumbing,
input checks, model builders (levit_mm's and the peers'), complexity counts, reduced
precision and ONNX paths, sample photos, test helpers.  Nothing below imports it."""
