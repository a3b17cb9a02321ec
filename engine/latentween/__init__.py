"""latentween: in-between frames for two keyframes with a latent diffusion model.

Implements "Interpolating between Images with Diffusion Models" (Wang & Golland, 2023).
Importing the package is cheap: torch and diffusers load only when the engine is used.
"""
__version__ = "0.1.0"
