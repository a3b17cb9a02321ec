"""The toy world: 64x64 images of one filled disk, whose ground truth is analytic.

`world` renders disks from parameters, `scorer` fits parameters back from an image and says
whether the image is a valid disk ("on the manifold"), `metrics` measures in-between sequences in
fitted-parameter space, and `train` trains the tiny latent diffusion model shipped in `model/`
(see FACTS.md, "Toy world"). Importing this package loads neither torch nor diffusers.
"""
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
