"""synth: image synthesis with a single robust classifier (Santurkar et al., 2019).

One primitive (`pgd`), composable objectives, one model loader, and the paper's tasks.
"""

from .images import ImageError, load_image, load_mask, mask_from_layers
from .models import DEFAULT_MODEL, ModelLoadError, RobustModel, list_models, load_model, standard_twin
from .objectives import Objective, class_loss, feature, masked_fidelity
from .pgd import L2Ball, LinfBall, Settings, Step, pgd
from .planning import Plan, plan
from .presets import PRESETS, recipe, settings
from .seeds import SeedBank, fit_seed_bank, generic_seed
from .tasks import (
    classify,
    generate,
    inpaint,
    paint_features,
    sketch_to_image,
    super_resolve,
    top_features,
    translate,
    visualize,
)

__all__ = [
    "pgd",
    "Step",
    "Objective",
    "class_loss",
    "feature",
    "masked_fidelity",
    "RobustModel",
    "load_model",
    "list_models",
    "standard_twin",
    "DEFAULT_MODEL",
    "ModelLoadError",
    "SeedBank",
    "fit_seed_bank",
    "generic_seed",
    "ImageError",
    "load_image",
    "load_mask",
    "mask_from_layers",
    "generate",
    "inpaint",
    "super_resolve",
    "translate",
    "sketch_to_image",
    "paint_features",
    "visualize",
    "classify",
    "top_features",
    "settings",
    "Settings",
    "L2Ball",
    "LinfBall",
    "recipe",
    "plan",
    "Plan",
    "PRESETS",
]
