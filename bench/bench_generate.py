# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Decode speed of `VideoChatForConditionalGeneration.generate` against the bare LLM, side by side in one run.

Both sides use the same weights: a medium Mistral (hidden 1024, 8 layers by default) inside our model, and a stock
`MistralForCausalLM` built from the same `text_config` with the LLM and `lm_head` weights copied in, fed the very
`inputs_embeds` our model builds (video features already spliced in). Per-token decode time is the interval between
consecutive decode steps (a logits processor stamps each step; the prefill step is excluded), median over all steps
of interleaved repeats, which keeps the measurement robust to load on shared machines. The script also
counts vision-encoder calls per `generate` (must be exactly one) and prints the ratio ours / bare.

With `--compile` both sides decode with a static cache and a `torch.compile`d decoding step (`fullgraph=True`;
transformers compiles on accelerators only, the flag forces it on CPU too), warmed up before the clock runs. The
compiled step is also timed on its own (each call of the compiled forward inside the timed `generate` runs).

    python bench/bench_generate.py [--hidden 1024 --layers 8 --new-tokens 64 --repeats 5 --device cpu --compile]
"""

import argparse
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, CompileConfig, GenerationConfig, LogitsProcessor, LogitsProcessorList

from videochat import VideoChatConfig, VideoChatForConditionalGeneration


def build_models(hidden: int, layers: int, device: str, dtype: torch.dtype):
    text = {
        "model_type": "mistral",
        "hidden_size": hidden,
        "intermediate_size": hidden * 3,
        "num_hidden_layers": layers,
        "num_attention_heads": hidden // 64,
        "num_key_value_heads": max(1, hidden // 256),
        "head_dim": 64,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    }
    vision = {
        "model_type": "videochat_internvideo2_vision",
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_frames": 8,
    }
    qformer = {
        "model_type": "blip_2_qformer",
        "hidden_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 512,
    }
    config = VideoChatConfig(vision_config=vision, qformer_config=qformer, text_config=text, video_token_id=32000)
    torch.manual_seed(0)
    ours = VideoChatForConditionalGeneration(config).to(device, dtype).eval()
    bare = AutoModelForCausalLM.from_config(config.text_config).to(device, dtype).eval()
    bare.model.load_state_dict(ours.model.language_model.state_dict())
    bare.lm_head.load_state_dict(ours.lm_head.state_dict())
    return ours, bare


def timed_compiled_calls(model, durations: list):
    """Make `generate` time every call of `model`'s compiled decoding step into `durations` (seconds); returns a
    function that undoes it."""
    get_compiled_call = model.get_compiled_call

    def timing_get_compiled_call(compile_config):
        compiled = get_compiled_call(compile_config)

        def call(*args, **kwargs):
            start = time.perf_counter()
            output = compiled(*args, **kwargs)
            if output.logits.is_cuda:
                torch.cuda.synchronize()
            durations.append(time.perf_counter() - start)
            return output

        return call

    model.get_compiled_call = timing_get_compiled_call
    return lambda: model.__dict__.pop("get_compiled_call", None)


class StepClock(LogitsProcessor):
    """Records a timestamp at every generation step (after that step's forward)."""

    def __init__(self):
        self.stamps = []

    def __call__(self, input_ids, scores):
        if scores.is_cuda:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        return scores

    def decode_intervals(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps[:-1], self.stamps[1:])]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--compile", action="store_true", help="static cache and a compiled decoding step")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    ours, bare = build_models(args.hidden, args.layers, args.device, dtype)

    num_queries = ours.config.num_visual_queries
    input_ids = torch.tensor(
        [[1, 733, 16289, 28793, *([32000] * num_queries), 733, 28748, 16289, 28793]], device=args.device
    )
    clips = torch.randn(1, args.frames, 3, 224, 224, device=args.device, dtype=dtype)
    vision_calls = []
    ours.model.vision_model.register_forward_hook(lambda *a: vision_calls.append(1))
    captured = {}
    hook = ours.model.language_model.register_forward_pre_hook(
        lambda m, a, kw: captured.update(embeds=kw["inputs_embeds"]), with_kwargs=True
    )
    with torch.no_grad():
        ours(input_ids=input_ids, pixel_values_videos=clips)
    hook.remove()
    inputs_embeds = captured["embeds"]

    compile_settings = {}
    if args.compile:
        compile_config = CompileConfig(fullgraph=True)
        compile_config._compile_all_devices = True  # generate compiles on accelerators only by default
        compile_settings = {"cache_implementation": "static", "compile_config": compile_config}

    def gen_config(n):
        return GenerationConfig(
            do_sample=False, max_new_tokens=n, min_new_tokens=n, eos_token_id=2, pad_token_id=2, **compile_settings
        )

    def run_ours(n, clock=None):
        processors = LogitsProcessorList([clock] if clock else [])
        return lambda: ours.generate(
            input_ids=input_ids,
            pixel_values_videos=clips,
            generation_config=gen_config(n),
            logits_processor=processors,
        )

    def run_bare(n, clock=None):
        processors = LogitsProcessorList([clock] if clock else [])
        return lambda: bare.generate(
            inputs_embeds=inputs_embeds, generation_config=gen_config(n), logits_processor=processors
        )

    with torch.no_grad():
        same = ours.generate(input_ids=input_ids, pixel_values_videos=clips, generation_config=gen_config(16))[
            0, input_ids.shape[1] :
        ]
        reference = bare.generate(inputs_embeds=inputs_embeds, generation_config=gen_config(16))[0]
        assert same.tolist() == reference.tolist(), "ours and the bare LLM generated different tokens"
        vision_calls.clear()
        run_ours(4)()
        calls_per_generate = len(vision_calls)
        warm_up = args.new_tokens if args.compile else 2  # compiled: the timed cache shape, so no recompilation
        run_ours(warm_up)(), run_bare(warm_up)()
        per_token = {"ours": [], "bare": []}
        compiled_calls = {"ours": [], "bare": []}
        undo = [timed_compiled_calls(model, compiled_calls[name]) for name, model in (("ours", ours), ("bare", bare))]
        for _ in range(args.repeats):
            for name, runner in (("ours", run_ours), ("bare", run_bare)):
                clock = StepClock()
                runner(args.new_tokens, clock)()
                per_token[name].extend(clock.decode_intervals())
        for restore in undo:
            restore()
    ours_ms = statistics.median(per_token["ours"]) * 1e3
    bare_ms = statistics.median(per_token["bare"]) * 1e3
    mode = "static cache + compiled decoding step" if args.compile else "dynamic cache, eager"
    print(
        f"device={args.device} dtype={args.dtype} hidden={args.hidden} layers={args.layers} "
        f"new_tokens={args.new_tokens} ({mode})"
    )
    print(f"vision encoder calls per generate: {calls_per_generate}")
    print(f"decode ms/token: ours {ours_ms:.2f}  bare MistralForCausalLM {bare_ms:.2f}")
    print(f"ratio ours/bare: {ours_ms / bare_ms:.3f} (target <= 1.05)")
    if args.compile:
        ours_step, bare_step = (statistics.median(compiled_calls[name]) * 1e3 for name in ("ours", "bare"))
        print(f"compiled decoding step alone, ms: ours {ours_step:.2f}  bare {bare_step:.2f}")
        print(f"ratio ours/bare (compiled step): {ours_step / bare_step:.3f}")


if __name__ == "__main__":
    main()
