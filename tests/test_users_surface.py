# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""What users touch first: the pipeline, streaming, the evaluation-harness batch path and the command line."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch


REPO = Path(__file__).resolve().parents[1]
QUESTION = "describe the video."


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny converted InternVideo2-Chat-8B-HD folder (random weights) and two different H.264 clips."""
    from videochat.cli.demo import write_demo_video, write_original_checkpoint
    from videochat.convert.converter import convert

    root = tmp_path_factory.mktemp("users")
    original = write_original_checkpoint(root / "original", seed=0)
    convert(original, root / "converted", preset="internvideo2-chat-8b-hd", progress=False)
    first = write_demo_video(root / "first.mp4", num_frames=24, width=320, height=180)
    second = write_demo_video(root / "second.mp4", num_frames=40, width=200, height=200)
    return root / "converted", first, second


@pytest.fixture(scope="module")
def model_and_processor(tiny_checkpoint):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import videochat  # noqa: F401

    folder = tiny_checkpoint[0]
    return AutoModelForImageTextToText.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)


def squeeze(text: str) -> str:
    """Text without whitespace: the pipeline decodes prompt + answer and cuts the prompt, the tiny tokenizer's
    Metaspace
    decoder then places spaces differently than decoding the new tokens alone."""
    return "".join(text.split())


def video_message(video, question=QUESTION, key="path"):
    return [{"role": "user", "content": [{"type": "video", key: str(video)}, {"type": "text", "text": question}]}]


def test_pipeline_answers_about_a_video(model_and_processor, tiny_checkpoint):
    from transformers import pipeline

    model, processor = model_and_processor
    _, video, _ = tiny_checkpoint
    pipe = pipeline("image-text-to-text", model=model, processor=processor)
    chat = pipe(text=video_message(video), max_new_tokens=6, generate_kwargs={"do_sample": False})
    answer = chat[0]["generated_text"][-1]
    assert answer["role"] == "assistant" and isinstance(answer["content"], str) and answer["content"]

    # the same answer as the plain processor + generate path
    inputs = processor.apply_chat_template(
        video_message(video), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    output = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    expected = processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert squeeze(answer["content"]) == squeeze(expected)

    # a raw prompt with `videos=` works too
    prompt = processor.apply_chat_template(video_message(video), add_generation_prompt=True, tokenize=False)
    raw = pipe(
        text=prompt,
        videos=[str(video)],
        max_new_tokens=6,
        generate_kwargs={"do_sample": False},
        return_full_text=False,
    )
    assert squeeze(raw[0]["generated_text"]) == squeeze(expected)


def test_text_iterator_streamer_yields_the_generated_text(model_and_processor, tiny_checkpoint):
    from transformers import TextIteratorStreamer

    model, processor = model_and_processor
    _, video, _ = tiny_checkpoint
    inputs = processor.apply_chat_template(
        video_message(video), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=60)
    outputs = {}

    def run():
        outputs["ids"] = model.generate(**inputs, max_new_tokens=10, do_sample=False, streamer=streamer)

    thread = threading.Thread(target=run)
    thread.start()
    pieces = list(streamer)
    thread.join()
    assert len(pieces) >= 2  # streamed in several pieces, not at the end
    expected = processor.decode(outputs["ids"][0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert squeeze("".join(pieces)) == squeeze(expected)


def test_evaluation_harness_batch_equals_single_prompts(model_and_processor, tiny_checkpoint):
    """lmms-eval style: `{"type": "video", "video": path}` blocks, batch of 2, left padding, greedy."""
    model, processor = model_and_processor
    _, first, second = tiny_checkpoint
    conversations = [
        video_message(first, QUESTION, key="video"),
        video_message(second, "what is happening in the video? describe it in detail.", key="video"),
    ]
    kwargs = {"add_generation_prompt": True, "tokenize": True, "return_dict": True, "return_tensors": "pt"}
    batch = processor.apply_chat_template(conversations, processor_kwargs={"padding": True}, **kwargs)
    assert batch["input_ids"].shape[0] == 2
    lengths = batch["attention_mask"].sum(-1)
    assert lengths[0] != lengths[1]  # the prompts differ, so one row is padded ...
    short = int(lengths.argmin())
    assert batch["attention_mask"][short, 0] == 0  # ... on the left
    batched = model.generate(**batch, max_new_tokens=8, do_sample=False)
    new_batched = batched[:, batch["input_ids"].shape[1] :]
    for row, conversation in enumerate(conversations):
        single = processor.apply_chat_template(conversation, **kwargs)
        output = model.generate(**single, max_new_tokens=8, do_sample=False)
        assert torch.equal(new_batched[row], output[0, single["input_ids"].shape[1] :])


def run_cli(*args, timeout=180):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "videochat", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    return result, time.perf_counter() - start


def test_chat_command_prints_an_answer(model_and_processor, tiny_checkpoint):
    model, processor = model_and_processor
    folder, video, _ = tiny_checkpoint
    result, _ = run_cli("chat", str(video), QUESTION, "--model", str(folder), "--greedy", "--max-new-tokens", "6")
    assert result.returncode == 0, result.stderr
    inputs = processor.apply_chat_template(
        video_message(video), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    output = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    expected = processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert squeeze(expected) and squeeze(expected) in squeeze(result.stdout)


def test_chat_command_reports_a_missing_video(tiny_checkpoint, tmp_path):
    folder = tiny_checkpoint[0]
    result, _ = run_cli("chat", str(tmp_path / "missing.mp4"), QUESTION, "--model", str(folder))
    assert result.returncode == 2
    assert "video file not found" in result.stderr and "missing.mp4" in result.stderr
    assert "Traceback" not in result.stderr


def test_chat_command_rejects_a_folder_that_is_not_a_converted_checkpoint(tiny_checkpoint, tmp_path):
    video = tiny_checkpoint[1]
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    for folder in (tmp_path, tmp_path / "empty"):
        folder.mkdir(exist_ok=True)
        result, _ = run_cli("chat", str(video), QUESTION, "--model", str(folder))
        assert result.returncode == 2
        assert "not a converted videochat checkpoint" in result.stderr
        assert "Traceback" not in result.stderr


def test_demo_streams_an_answer_with_timings():
    result, seconds = run_cli("demo", "--max-new-tokens", "8", timeout=300)
    assert result.returncode == 0, result.stderr
    answer_line = next(line for line in result.stdout.splitlines() if line.startswith("answer:"))
    assert len(answer_line) > len("answer: ")
    for step in ("[1/4]", "[2/4]", "[3/4]", "[4/4]", "timings:", "convert", "answer (prefill + decode)"):
        assert step in result.stdout
    assert "tokens generated" in result.stdout
    assert seconds < 120, f"videochat demo took {seconds:.1f} s"
