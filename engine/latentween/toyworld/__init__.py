"""The toy worlds: 64x64 images whose ground truth is analytic.

Disks: `world` renders one filled disk from parameters, `scorer` fits parameters back from an image
and says whether the image is a valid disk ("on the manifold"), `metrics` measures in-between
sequences in fitted-parameter space. Shapes: `shapes` renders up to two disks, squares and
triangles, `shapes_scorer` fits them per object. `worlds` gives `latentween eval` both; `train`
trains the tiny latent diffusion models shipped in `model/` (`--model toy`) and `model_shapes/`
(`--model toy-shapes`), `sharpen` fine-tunes their decoders. Importing this package loads
neither torch nor diffusers.
"""
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
SHAPES_MODEL_DIR = Path(__file__).resolve().parent / "model_shapes"
