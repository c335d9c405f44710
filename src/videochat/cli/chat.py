# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`videochat chat VIDEO [QUESTION]`: chat about a video with a converted checkpoint, streaming the answer.

Without QUESTION it is multi-turn: questions are read from standard input until an empty line or end of input; the
video is decoded and encoded once and reused for every turn.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, TextStreamer

from .. import _auto  # noqa: F401  (registers the Auto classes)
from .devices import check_device, default_device
from .errors import handles_errors


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


class ChatError(Exception):
    """A user-facing problem (bad path, not a converted checkpoint); printed without a traceback, exit code 2."""


def looks_like_a_path(name: str) -> bool:
    """A `--model` value that can only be a local folder (a Hub repo id is `name` or `owner/name`)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _check_local_folder(path: Path) -> None:
    config_file = path / "config.json"
    if not path.is_dir():
        raise ChatError(f"--model {path} is a file; name a converted folder")
    if not config_file.is_file():
        raise ChatError(
            f"{path} is not a converted videochat checkpoint (no config.json); create one with `videochat convert`"
        )
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, OSError) as error:
        raise ChatError(f"{config_file} is not valid JSON ({error}); re-run `videochat convert`") from None
    if model_type != "videochat":
        raise ChatError(
            f"{path} is not a converted videochat checkpoint (config.json has model_type {model_type!r}); "
            "convert the original checkpoint with `videochat convert`"
        )
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise ChatError(
            f"{path} has no tokenizer.json: the converted folder is incomplete; re-run `videochat convert` (or "
            "`videochat convert-tokenizer` into a folder and copy its files here)"
        )


def load_converted(model_dir, device: str = "cpu", dtype: str = "float32"):
    """Load a converted folder (or Hub repo id) with the Auto classes; raises `ChatError` with a clear message."""
    path = Path(model_dir).expanduser()
    if path.exists():
        _check_local_folder(path)
        model_dir = path
    elif looks_like_a_path(str(model_dir)):
        raise ChatError(f"model folder not found: {model_dir}")
    if dtype not in DTYPES:
        raise ChatError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    check_device(device)
    try:
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=DTYPES[dtype]).to(device).eval()
        processor = AutoProcessor.from_pretrained(model_dir)
    except OSError as error:
        where = "folder" if path.exists() else "folder or Hub repo (no local folder of that name)"
        raise ChatError(f"cannot load the model {where} {model_dir}: {error}") from None
    return model, processor


def _check_video(video) -> None:
    if isinstance(video, (str, Path)) and not str(video).startswith(("http://", "https://")):
        if not Path(video).exists():
            raise ChatError(f"video file not found: {video}")
        if not Path(video).is_file():
            raise ChatError(f"{video} is not a video file")


def _check_text(text: str, where: str) -> str:
    """Text from the command line or standard input, refused when it is not valid UTF-8 (Python keeps undecodable
    bytes of arguments as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ChatError(
            f"the {where} is not valid UTF-8 text; convert it to UTF-8 (or set a UTF-8 locale, e.g. LANG=C.UTF-8)"
        ) from None
    return text


def read_questions(stream):
    """Questions from `stream`, one a line, until an empty line or the end; undecodable input is a `ChatError`."""
    while True:
        try:
            line = stream.readline()
        except UnicodeDecodeError:
            raise ChatError(
                "standard input is not valid UTF-8 text; convert it to UTF-8 (or set a UTF-8 locale, e.g. "
                "LANG=C.UTF-8)"
            ) from None
        question = _check_text(line, "input").strip()
        if not question:
            return
        yield question


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


@handles_errors("chat")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videochat chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("video", help="path of a video file")
    parser.add_argument("question", nargs="?", help="question; omit for a multi-turn chat on standard input")
    parser.add_argument("--model", required=True, help="converted checkpoint folder or Hub repo id")
    parser.add_argument("--num-frames", type=int, default=None, help="frames sampled from the video (preset default)")
    parser.add_argument("--hd-num", type=int, default=None, help="maximum HD tiles (HD presets)")
    parser.add_argument("--device", default=default_device(), help="cpu, cuda, cuda:1, ... (default: cuda if any)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the checkpoint's defaults")
    args = parser.parse_args(argv)
    if args.num_frames is not None and args.num_frames < 1:
        parser.error("--num-frames must be a positive integer")
    if args.hd_num is not None and args.hd_num < 1:
        parser.error("--hd-num must be a positive integer")
    if args.max_new_tokens < 1:
        parser.error("--max-new-tokens must be a positive integer")
    torch.manual_seed(args.seed)
    try:
        _check_video(args.video)
        if args.question is not None:
            _check_text(args.question, "question")
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
        for question in read_questions(sys.stdin):
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
