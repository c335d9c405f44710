# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Memory of `generate` on a 16-frame x 7-clip video: what generate keeps in its model kwargs after prefill, and the
peak of torch's CPU allocations during the whole call, for our `generate` and for transformers' default handling of
the encoded video (which keeps the full output of `get_video_features` alive until generation ends), in one run.

The model has the real widths of InternVideo2-Chat-8B-HD's vision side (encoder 1408 wide with 224x224 frames of
14x14 patches, BLIP-2 Q-Former 768 wide with 96 queries, projection to 4096) but one encoder block, one Q-Former
block and a one-layer 4096-wide LLM with a small vocabulary, so that it runs on a CPU: the held tensors have the real
sizes, the weights do not. Peaks are measured from torch's allocation events (the profiler's memory records; torch's
CPU allocator is invisible to tracemalloc) relative to the allocations live when `generate` starts: over the whole
call (the encoder's forward dominates it) and from the LLM's prefill on, when the encoder outputs are no longer
needed.

    python bench/bench_generate_memory.py [--frames 16 --clips 7 --new-tokens 8]
"""

import argparse

import torch
from torch.profiler import ProfilerActivity, profile, record_function
from transformers import GenerationConfig, GenerationMixin

from videochat import VideoChatConfig, VideoChatForConditionalGeneration


def build_model(frames: int) -> VideoChatForConditionalGeneration:
    vision = {
        "model_type": "videochat_internvideo2_vision",
        "hidden_size": 1408,
        "intermediate_size": 6144,
        "num_hidden_layers": 1,
        "num_attention_heads": 16,
        "num_frames": frames,
    }
    qformer = {
        "model_type": "blip_2_qformer",
        "hidden_size": 768,
        "num_hidden_layers": 1,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    }
    text = {
        "model_type": "mistral",
        "hidden_size": 4096,
        "intermediate_size": 1024,
        "num_hidden_layers": 1,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 1000,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    }
    config = VideoChatConfig(
        vision_config=vision, qformer_config=qformer, text_config=text, video_token_id=5, image_token_id=6
    )
    torch.manual_seed(0)
    return VideoChatForConditionalGeneration(config).eval()


def unique_tensor_bytes(value, seen=None) -> int:
    """Bytes of the distinct tensor storages reachable from `value` (dicts, lists, tuples, ModelOutputs)."""
    seen = set() if seen is None else seen
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if isinstance(value, dict):  # ModelOutput is a dict
        return sum(unique_tensor_bytes(item, seen) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(unique_tensor_bytes(item, seen) for item in value)
    return 0


def held_after_prefill(model, run) -> dict:
    """Run `run()` and return the bytes generate's model kwargs hold after the prefill step, per key."""
    snapshots = []
    update = model._update_model_kwargs_for_generation

    def recording_update(outputs, model_kwargs, *args, **kwargs):
        updated = update(outputs, model_kwargs, *args, **kwargs)
        if not snapshots:
            snapshots.append({key: unique_tensor_bytes(value) for key, value in updated.items()})
        return updated

    model._update_model_kwargs_for_generation = recording_update
    try:
        run()
    finally:
        del model._update_model_kwargs_for_generation
    return snapshots[0]


def allocation_peaks(model, run) -> tuple[int, int]:
    """Peaks of the bytes torch allocated on the CPU during `run()`, above what was live when it started: over the
    whole call, and from the LLM's first forward on (prefill and decoding, after the visual encoding)."""
    language_model = model.model.language_model
    forward = language_model.forward

    def marked_forward(*args, **kwargs):
        with record_function("language_model"):
            return forward(*args, **kwargs)

    language_model.forward = marked_forward
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run()
    finally:
        del language_model.forward
    events = prof.profiler.kineto_results.events()
    llm_start = min(event.start_ns() for event in events if event.name() == "language_model")
    deltas = sorted((event.start_ns(), event.nbytes()) for event in events if event.name() == "[memory]")
    live = peak = peak_from_llm = 0
    for start, delta in deltas:
        live += delta
        peak = max(peak, live)
        if start >= llm_start:
            peak_from_llm = max(peak_from_llm, live)
    return peak, peak_from_llm


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--clips", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=8)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    model = build_model(args.frames)
    num_queries = model.config.num_visual_queries
    input_ids = torch.tensor([[1, 33, *([5] * num_queries * args.clips), 73, 748]])
    clips = torch.randn(args.clips, args.frames, 3, 224, 224)
    generation = GenerationConfig(
        do_sample=False, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, eos_token_id=2, pad_token_id=2
    )

    def run():
        return model.generate(input_ids=input_ids, pixel_values_videos=clips, generation_config=generation)

    ours = type(model)._prepare_multimodal_encoder_kwargs_for_generation
    variants = {
        "transformers' default (full get_video_features output kept)": (
            GenerationMixin._prepare_multimodal_encoder_kwargs_for_generation
        ),
        "ours": ours,
    }
    print(f"{args.clips} clips x {args.frames} frames, 224x224; {args.new_tokens} new tokens; float32 on CPU")
    results = {}
    for name, prepare in variants.items():
        type(model)._prepare_multimodal_encoder_kwargs_for_generation = prepare
        try:
            tokens = run()
            held = held_after_prefill(model, run)
            peak, peak_from_llm = allocation_peaks(model, run)
        finally:
            type(model)._prepare_multimodal_encoder_kwargs_for_generation = ours
        results[name] = tokens
        print(
            f"{name}: mm_encoder_outputs held after prefill {held.get('mm_encoder_outputs', 0) / 2**20:.1f} MiB "
            f"(all model kwargs but the cache: "
            f"{sum(v for k, v in held.items() if k != 'past_key_values') / 2**20:.1f} MiB); "
            f"peak of generate's allocations {peak / 2**20:.1f} MiB, from the LLM's prefill on "
            f"{peak_from_llm / 2**20:.1f} MiB"
        )
    first, second = results.values()
    print(f"same tokens: {first.tolist() == second.tolist()}")


if __name__ == "__main__":
    main()
