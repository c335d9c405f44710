# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Build one of our models from a converted state dict, failing on any missing, unexpected or mismatched key."""

import torch


class IncompleteConversionError(ValueError):
    """The converted state dict does not cover the model exactly."""


def instantiate_from_state_dict(model_class, config, state_dict: dict[str, torch.Tensor]):
    """`model_class.from_pretrained(None, config=..., state_dict=...)` (meta-device init, no random init of loaded
    weights) with every loading-info list required to be empty."""
    model, info = model_class.from_pretrained(None, config=config, state_dict=state_dict, output_loading_info=True)
    problems = {key: value for key, value in info.items() if value}
    if problems:
        raise IncompleteConversionError(f"converted weights do not match {model_class.__name__}: {problems}")
    return model
