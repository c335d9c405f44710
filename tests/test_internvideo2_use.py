# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Using converted InternVideo2 folders: Auto classes after `import videochat`, the video-classification pipeline,
`videochat embed`, bf16 with the converted weights."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import shared_path
from internvideo2_testing import STAGE1, STAGE2, convert_fixture, write_clip
from safetensors import safe_open
from safetensors.torch import load_file


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("internvideo2")
    return {"stage1": convert_fixture("stage1", root / "stage1"), "stage2": convert_fixture("stage2", root / "stage2")}


def test_a_fresh_process_loads_the_folders_with_the_auto_classes_after_import(converted):
    code = f"""
import videochat, torch
from transformers import AutoModel, AutoModelForVideoClassification, AutoProcessor, AutoImageProcessor
from videochat import InternVideo2VideoTextModel
print(type(AutoModelForVideoClassification.from_pretrained({str(converted["stage1"])!r})).__name__)
print(type(AutoModel.from_pretrained({str(converted["stage1"])!r})).__name__)
print(type(AutoImageProcessor.from_pretrained({str(converted["stage1"])!r})).__name__)
print(type(AutoModel.from_pretrained({str(converted["stage2"])!r})).__name__)
print(type(InternVideo2VideoTextModel.from_pretrained({str(converted["stage2"])!r})).__name__)
print(type(AutoProcessor.from_pretrained({str(converted["stage2"])!r})).__name__)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "InternVideo2ForVideoClassification",
        "InternVideo2Model",
        "InternVideo2ImageProcessor",
        "InternVideo2VideoTextModel",
        "InternVideo2VideoTextModel",
        "InternVideo2Processor",
    ]
    without_import = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from transformers import AutoConfig; AutoConfig.from_pretrained({str(converted['stage2'])!r})",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert without_import.returncode != 0  # registration comes with `import videochat`, no trust_remote_code


def test_video_classification_pipeline_on_a_converted_classifier(converted, tmp_path):
    from transformers import AutoImageProcessor, AutoModelForVideoClassification, pipeline

    clip = write_clip(tmp_path / "clip.mp4", num_frames=24, width=128, height=96)
    classifier = pipeline("video-classification", model=str(converted["stage1"]))
    predictions = classifier(str(clip), top_k=3)
    assert len(predictions) == 3 and predictions[0]["label"].startswith("LABEL_")
    assert predictions[0]["score"] >= predictions[1]["score"] >= predictions[2]["score"]
    # the pipeline decodes the first num_frames frames itself; the same frames through our processor agree
    model = AutoModelForVideoClassification.from_pretrained(converted["stage1"]).eval()
    processor = AutoImageProcessor.from_pretrained(converted["stage1"])
    from videochat.video_utils_videochat import load_video

    frames, _ = load_video(str(clip), frames_indices=list(range(8)))
    with torch.no_grad():
        probs = model(**processor(frames)).logits.softmax(-1)[0]
    assert predictions[0]["score"] == pytest.approx(probs.max().item(), abs=1e-5)


def test_converted_classifier_reproduces_the_fixture_logits_in_bf16_without_nan(converted):
    from transformers import AutoModelForVideoClassification

    inputs = load_file(shared_path(*STAGE1, "inputs.safetensors"))
    expected = load_file(shared_path(*STAGE1, "expected.safetensors"))
    model = AutoModelForVideoClassification.from_pretrained(converted["stage1"], dtype=torch.bfloat16).eval()
    with torch.no_grad():
        logits = model(inputs["pixel_values"].transpose(1, 2).to(torch.bfloat16)).logits
    assert torch.isfinite(logits).all()
    assert (logits.float() - expected["logits"]).abs().max() < 0.1  # bf16 rounding, same ranking scale
    assert torch.equal(logits.float().argmax(-1), expected["logits"].argmax(-1))


def test_embed_command_writes_the_models_embeddings(converted, tmp_path, capsys):
    from videochat.cli import main

    videos = tmp_path / "videos"
    videos.mkdir()
    for index in range(3):
        write_clip(videos / f"clip{index}.mp4", num_frames=12 + index, seed=index)
    (videos / "notes.txt").write_text("not a video")
    output = tmp_path / "embeddings.safetensors"
    assert (
        main(
            [
                "embed",
                str(videos),
                str(shared_path(*STAGE2, "clip0.mp4")),
                "--model",
                str(converted["stage2"]),
                "--output",
                str(output),
                "--batch-size",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    with safe_open(str(output), framework="pt") as handle:
        embeddings = handle.get_tensor("embeddings")
        paths = json.loads(handle.metadata()["paths"])
    assert embeddings.shape == (4, 32) and [p.rsplit("/", 1)[-1] for p in paths] == [
        "clip0.mp4",
        "clip1.mp4",
        "clip2.mp4",
        "clip0.mp4",
    ]
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(4), atol=1e-5)
    # the fixture clip's embedding is the original demo's get_vid_feat
    demo = load_file(shared_path(*STAGE2, "expected.safetensors"))["demo.clip0.video_feat"]
    assert (embeddings[3] - demo[0]).abs().max() < 1e-5
    assert (
        main(
            [
                "embed",
                str(videos / "clip1.mp4"),
                "--model",
                str(converted["stage1"]),
                "--output",
                str(tmp_path / "e.npz"),
                "--no-normalize",
                "--no-progress",
            ]
        )
        == 0
    )
    stored = np.load(tmp_path / "e.npz")
    assert stored["embeddings"].shape == (1, 40) and stored["paths"].tolist()[0].endswith("clip1.mp4")


def test_embed_reports_an_undecodable_video_or_skips_it(converted, tmp_path, capsys):
    from videochat.cli import main

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    good = write_clip(tmp_path / "good.mp4")
    argv = ["embed", str(bad), str(good), "--model", str(converted["stage2"]), "--output", str(tmp_path / "e.npy")]
    assert main([*argv, "--no-progress"]) == 2
    assert "cannot embed" in capsys.readouterr().err and not (tmp_path / "e.npy").exists()
    assert main([*argv, "--no-progress", "--skip-errors"]) == 0
    assert "skipped" in capsys.readouterr().err and np.load(tmp_path / "e.npy").shape == (1, 32)


def test_zero_shot_scores_from_the_converted_folder_match_the_demo(converted):
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(converted["stage2"]).eval()
    processor = AutoProcessor.from_pretrained(converted["stage2"])
    texts = json.loads(shared_path(*STAGE2, "meta.json").read_text())["texts"]
    inputs = processor(text=texts, videos=shared_path(*STAGE2, "clip1.mp4"), truncation=True)
    with torch.no_grad():
        probs = model(**inputs, logit_scale=100.0).logits_per_video.softmax(-1)
    expected = load_file(shared_path(*STAGE2, "expected.safetensors"))
    # batched texts vs the demo's one text per call: only summation order differs
    assert (probs - expected["demo.clip1.probs"]).abs().max() < 1e-5
    assert F.normalize(
        model.get_text_features(**processor(text=texts, truncation=True)).pooler_output, dim=-1
    ).shape == (3, 32)
