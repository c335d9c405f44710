# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""
The VideoChat family on vLLM's Transformers modeling backend (imported by vLLM through `vllm_plugin.register`).

The backend builds our `VideoChatModel` with `AutoModel.from_config`, runs the LLM with vLLM attention and calls
`get_video_features` / `get_image_features` for the visual items. On top of it:

* `VideoChatForVLLM` declares the `<video>` / `<image>` placeholder ids, which lie past the LLM vocabulary, as
  out-of-vocabulary multi-modal tokens (vLLM masks them before the embedding lookup);
* `VideoChatMultiModalProcessor` makes the served prompt ids equal `VideoChatProcessor`'s (see
  `videochat.cli.serving`): the prompt starts with the first segment's BOS exactly once, every item expands to its
  placeholders plus the clip separators and segment BOS the processor writes, and the system message the chat
  template carries between `<qformer_instruction>` markers is cut out of the prompt and given to the items'
  processing as `qformer_text` (unless the request passes its own);
* it publishes the checkpoint's frame count to the video loader.
"""

import dataclasses

import torch
from vllm.model_executor.models.transformers import (
    MultiModalDummyInputsBuilder,
    MultiModalProcessingInfo,
    MultiModalProcessor,
    TransformersMultiModalForCausalLM,
)
from vllm.multimodal import MULTIMODAL_REGISTRY

from .serving import item_expansion_ids, prompt_ids_for_serving
from .vllm_video_loader import set_default_num_frames


class VideoChatMultiModalProcessor(MultiModalProcessor):
    def __init__(self, info, dummy_inputs, *args, **kwargs):
        super().__init__(info, dummy_inputs, *args, **kwargs)
        set_default_num_frames(info.get_hf_processor().image_processor.num_frames)

    def apply(self, inputs, timing_ctx):
        processor = self.info.get_hf_processor()
        prompt, instruction = prompt_ids_for_serving(processor, inputs.prompt)
        kwargs = dict(inputs.hf_processor_mm_kwargs)
        if instruction is not None and processor.qformer_instruction_mode != "none":
            kwargs.setdefault("qformer_text", instruction)
        inputs = dataclasses.replace(inputs, prompt=prompt, hf_processor_mm_kwargs=kwargs)
        return super().apply(inputs, timing_ctx)

    def _apply_hf_processor_main(self, mm_items, hf_kwargs):
        outputs = super()._apply_hf_processor_main(mm_items, hf_kwargs)
        processor = self.info.get_hf_processor(**hf_kwargs)
        for kind in ("video", "image"):
            grid = outputs.get(f"{kind}_grid_thw")
            if grid is None or f"{kind}_replacement_ids" not in outputs:
                continue
            replace = getattr(processor, f"replace_{kind}_token")
            items = [
                item_expansion_ids(processor, replace({f"{kind}_grid_thw": grid}, index)) for index in range(len(grid))
            ]
            outputs[f"{kind}_replacement_ids"] = torch.tensor([token for item in items for token in item])
            outputs[f"{kind}_replacement_sizes"] = torch.tensor([len(item) for item in items])
        return outputs


@MULTIMODAL_REGISTRY.register_processor(
    VideoChatMultiModalProcessor, info=MultiModalProcessingInfo, dummy_inputs=MultiModalDummyInputsBuilder
)
class VideoChatForVLLM(TransformersMultiModalForCausalLM):
    """`TransformersMultiModalForCausalLM` with the VideoChat prompt processing and out-of-vocabulary placeholders."""

    def __init__(self, *, vllm_config, prefix: str = ""):
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        config = vllm_config.model_config.hf_config
        self.configure_mm_token_handling(config.text_config.vocab_size, [config.video_token_id, config.image_token_id])


__all__ = ["VideoChatForVLLM", "VideoChatMultiModalProcessor"]
