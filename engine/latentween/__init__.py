"""latentween: in-between frames for two keyframes with a latent diffusion model.

Implements "Interpolating between Images with Diffusion Models" (Wang & Golland, 2023).
Importing the package is cheap: torch and diffusers load only when the engine is used.
"""
import os as _os

__version__ = "0.1.0"

# Bit-identical frames whatever the batching (see latentween.method): MKL's strict reproducibility
# mode makes a row's GEMM result independent of the other rows and of the thread split. It must be
# set before torch loads MKL, which is why it lives here. A user's own setting wins.
_os.environ.setdefault("MKL_CBWR", "AVX2,STRICT")
