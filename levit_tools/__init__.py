"""What levit_mm's tools, benchmarks, studies and tests share, and users never import: the
command-line header, input checks, peer model builders, complexity counts, measurement,
sample photos, dataset writers, results files.  It sits above the package (it imports
levit_mm; levit_mm never imports it) and is not installed: tools put the checkout on
``sys.path``."""
