# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat chat VIDEO [QUESTION]`: chat about a video with a converted checkpoint, streaming the answer.

Without QUESTION it is multi-turn: questions are read from standard input until an empty line or end of input; the
video is decoded and encoded once and reused for every turn.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, TextStreamer

from .. import _auto  # noqa: F401  (registers the Auto classes)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


class ChatError(Exception):
    """A user-facing problem (bad path, not a converted checkpoint); printed without a traceback, exit code 2."""


def load_converted(model_dir, device: str = "cpu", dtype: str = "float32"):
    """Load a converted folder (or Hub repo id) with the Auto classes; raises `ChatError` with a clear message."""
    path = Path(model_dir)
    if path.exists():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ChatError(
                f"{path} is not a converted videochat checkpoint (no config.json); create one with `videochat convert`"
            )
        if '"videochat"' not in config_file.read_text():
            raise ChatError(
                f"{path} is not a converted videochat checkpoint (config.json has another model_type); "
                "convert the original checkpoint with `videochat convert`"
            )
    if dtype not in DTYPES:
        raise ChatError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    try:
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=DTYPES[dtype]).to(device).eval()
        processor = AutoProcessor.from_pretrained(model_dir)
    except OSError as error:
        raise ChatError(f"cannot load {model_dir}: {error}") from None
    return model, processor


def _check_video(video) -> None:
    if isinstance(video, (str, Path)) and not Path(video).is_file():
        raise ChatError(f"video file not found: {video}")


def build_conversation(video, question: str, history: list[tuple[str, str]] | None = None) -> list[dict]:
    """The first user turn carries the video; earlier (question, answer) pairs follow as plain turns."""
    history = history or []
    turns = [*history, (question, None)]
    messages = []
    for index, (user_text, assistant_text) in enumerate(turns):
        content = [{"type": "text", "text": user_text}]
        if index == 0:
            content.insert(0, {"type": "video", "path": str(video)})
        messages.append({"role": "user", "content": content})
        if assistant_text is not None:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": assistant_text}]})
    return messages


@torch.no_grad()
def answer(
    model,
    processor,
    video,
    question: str,
    history=None,
    max_new_tokens: int = 256,
    stream: bool = False,
    num_frames: int | None = None,
    hd_num: int | None = None,
    video_features=None,
    **generate_kwargs,
) -> dict:
    """Answer `question` about `video`; returns `{"text", "num_new_tokens", "seconds", "video_features"}`.
    Pass the returned `video_features` back to skip re-encoding the video in later turns."""
    _check_video(video)
    processor_kwargs = {
        key: value for key, value in (("num_frames", num_frames), ("hd_num", hd_num)) if value is not None
    }
    inputs = processor.apply_chat_template(
        build_conversation(video, question, history),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs=processor_kwargs,
    )
    inputs = inputs.to(model.device)
    if "pixel_values_videos" in inputs:
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(model.dtype)
    start = time.perf_counter()
    if video_features is None and "pixel_values_videos" in inputs:
        video_features = model.model.get_video_features(
            inputs["pixel_values_videos"],
            inputs.get("video_qformer_input_ids"),
            inputs.get("video_qformer_attention_mask"),
        )
    model_inputs = {
        key: value
        for key, value in inputs.items()
        if key
        not in ("pixel_values_videos", "video_grid_thw", "video_qformer_input_ids", "video_qformer_attention_mask")
    }
    if video_features is not None:
        model_inputs["mm_encoder_outputs"] = {"video": video_features}
    streamer = TextStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None
    output = model.generate(**model_inputs, max_new_tokens=max_new_tokens, streamer=streamer, **generate_kwargs)
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    text = processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
    return {
        "text": text,
        "num_new_tokens": int(new_tokens.numel()),
        "seconds": time.perf_counter() - start,
        "video_features": video_features,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videochat chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("video", help="path of a video file")
    parser.add_argument("question", nargs="?", help="question; omit for a multi-turn chat on standard input")
    parser.add_argument("--model", required=True, help="converted checkpoint folder or Hub repo id")
    parser.add_argument("--num-frames", type=int, default=None, help="frames sampled from the video (preset default)")
    parser.add_argument("--hd-num", type=int, default=None, help="maximum HD tiles (HD presets)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the checkpoint's defaults")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    try:
        _check_video(args.video)
        model, processor = load_converted(args.model, args.device, args.dtype)
        options = {"num_frames": args.num_frames, "hd_num": args.hd_num, "max_new_tokens": args.max_new_tokens}
        if args.greedy:
            options["do_sample"] = False
        if args.question is not None:
            answer(model, processor, args.video, args.question, stream=True, **options)
            print()
            return 0
        history, features = [], None
        print("Ask about the video (empty line to quit).", file=sys.stderr)
        for line in sys.stdin:
            question = line.strip()
            if not question:
                break
            result = answer(
                model,
                processor,
                args.video,
                question,
                history=history,
                stream=True,
                video_features=features,
                **options,
            )
            print()
            history.append((question, result["text"]))
            features = result["video_features"]
        return 0
    except (ChatError, FileNotFoundError, ValueError) as error:
        print(f"videochat chat: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
