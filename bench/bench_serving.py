# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Throughput of vLLM (through our plugin) against batched `generate()` on the same checkpoint and the same requests.

One tiny-but-not-trivial InternVideo2-Chat-8B-HD checkpoint (converted by `videochat convert`, LLM hidden 128 with
head_dim 32, the real Mistral v0.3 vocabulary, every video 3 clips of 8 frames: 96 Q-Former queries per clip), 32
chat requests, each about its own generated H.264 clip, greedy, exactly `--new-tokens` tokens each. Both sides start
from video files (decoding and sampling are timed) and run in float32 on the CPU:

* `generate()`: `processor.apply_chat_template` on batches of `--batch-size` conversations, then one `generate()` per
  batch;
* vLLM: `LLM(folder).generate` on all 32 prompts at once (frames decoded with `videochat.load_video`, as the
  plugin's loader does for `video_url`s); engine start-up is not timed.

Prints clips/s and generated tokens/s for both, and the ratio vLLM / generate(). Needs the vLLM venv:

    make bench-serving        # or: .venvs/vllm/bin/python bench/bench_serving.py [--requests 32 --new-tokens 32]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serving_testing import build_checkpoints, conversation, write_clip  # noqa: E402


def requests_for(folder: Path, count: int) -> list[dict]:
    """`count` requests, each about a clip of its own (no engine cache can reuse another request's video)."""
    questions = ["What happens in the video?", "Describe the motion.", "Which way does the square go?", "Summarize."]
    requests = []
    for index in range(count):
        color = (40 + 6 * index, 220 - 5 * index, 30 + 3 * index)
        path = write_clip(
            folder / f"clip{index}.mp4", color=color, direction=1 - 2 * (index % 2), num_frames=24 + index
        )
        requests.append({"videos": [str(path)], "text": questions[index % len(questions)]})
    return requests


def run_generate(folder: str, requests: list[dict], new_tokens: int, batch_size: int) -> tuple[float, int, int]:
    from transformers import AutoModelForImageTextToText, AutoProcessor, GenerationConfig

    import videochat  # noqa: F401

    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(folder)
    config = GenerationConfig(do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)
    clips = tokens = 0
    start = time.perf_counter()
    for first in range(0, len(requests), batch_size):
        chats = [conversation(request) for request in requests[first : first + batch_size]]
        inputs = processor.apply_chat_template(
            chats,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        )
        with torch.inference_mode():
            output = model.generate(**inputs, generation_config=config)
        clips += int(inputs["video_grid_thw"][:, 0].sum())
        tokens += (output.shape[1] - inputs["input_ids"].shape[1]) * output.shape[0]
    return time.perf_counter() - start, clips, tokens


def run_vllm(folder: str, requests: list[dict], new_tokens: int) -> tuple[float, int, int]:
    from transformers import AutoProcessor
    from vllm import LLM, SamplingParams

    from videochat import load_video

    processor = AutoProcessor.from_pretrained(folder)
    llm = LLM(folder, dtype="float32", enforce_eager=True, max_model_len=2048)
    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, ignore_eos=True)
    start = time.perf_counter()
    prompts = [
        {
            "prompt": processor.apply_chat_template(conversation(request), add_generation_prompt=True),
            "multi_modal_data": {"video": load_video(request["videos"][0], num_frames=8)[0]},
        }
        for request in requests
    ]
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    clips = 3 * len(requests)  # fix_ratio 2x1 + global view: 3 clips per HD video
    tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
    return seconds, clips, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8, help="conversations per generate() call")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as root:
        paths = build_checkpoints(Path(root))
        requests = requests_for(Path(root), args.requests)
        results = {
            "generate()": run_generate(paths["hd"], requests, args.new_tokens, args.batch_size),
            "vLLM": run_vllm(paths["hd"], requests, args.new_tokens),
        }
    threads = torch.get_num_threads()
    print(f"\n{args.requests} requests, {args.new_tokens} new tokens each, float32, CPU ({threads} threads)")
    rates = {}
    for name, (seconds, clips, tokens) in results.items():
        rates[name] = (clips / seconds, tokens / seconds)
        print(f"{name:<11} {seconds:7.2f} s  {clips / seconds:7.2f} clips/s  {tokens / seconds:8.1f} tokens/s")
    clips_ratio = rates["vLLM"][0] / rates["generate()"][0]
    tokens_ratio = rates["vLLM"][1] / rates["generate()"][1]
    print(f"ratio vLLM / generate(): {tokens_ratio:.2f}x tokens/s, {clips_ratio:.2f}x clips/s")


if __name__ == "__main__":
    main()
