# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""VideoChatProcessor: prompts, token ids, Q-Former ids and pixels against the ORIGINAL code's recorded fixtures;
padding, errors, save/load and apply_chat_template on a real H.264 file."""

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from videochat.convert.presets import PRESETS, build_processor, load_chat_template
from videochat.parity.common import build_fixture_processor
from videochat.processing_videochat import VideoChatProcessor, get_num_visual_tokens
from videochat.qformer_instructions_videochat import split_instruction
from videochat.video_utils_videochat import format_time_message, get_segment_indices


SHARED = Path(os.environ.get("VIDEOCHAT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIXTURES = SHARED / "fixtures"

IV2_FIXTURES = {"tiny_hd": "internvideo2-chat-8b-hd", "tiny_nonhd": "internvideo2-chat-8b"}
VC2_FIXTURES = {
    "videochat2_it_vicuna": "videochat2-vicuna-7b",
    "videochat2_it_mistral": "videochat2-mistral-7b",
    "videochat2_it_hd_mistral": "videochat2-hd-mistral-7b",
    "videochat2_it_phi": "videochat2-phi3-mini",
    "videochat_v1": "videochat-7b",
}
# The benchmark question of the `mcq` cases (the user text is the system prompt followed by this).
MCQ_QUESTION = (
    "Question: What is the person doing?\nOptions:\n(A) playing basketball\n(B) doing homework\n"
    "(C) practicing yoga\nOnly give the best option."
)


def original_ids(processor, input_ids) -> list[int]:
    """Our ids with the visual positions written as the originals write them (id 0): our placeholders are the
    distinct ids of the `<video>` / `<image>` special tokens."""
    ids = torch.as_tensor(input_ids)
    placeholders = (ids == processor.video_token_id) | (ids == processor.image_token_id)
    return ids.masked_fill(placeholders, 0).tolist()


def fixture_dir(*parts) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"fixture missing: {path} (set VIDEOCHAT_SHARED to the shared/ folder)")
    return path


def load_fixture(path: Path):
    return json.loads((path / "meta.json").read_text()), load_file(path / "inputs.safetensors")


def vc2_cases():
    cases = []
    for folder in VC2_FIXTURES:
        meta = json.loads((fixture_dir("videochat2", folder) / "meta.json").read_text())
        cases.extend((folder, case) for case in meta["cases"])
    return cases


def tile_hd(frames: torch.Tensor) -> torch.Tensor:
    """The VideoChat2-HD model-side split (SPEC 5.2), written out here: normalised `[T, 3, R*224, C*224]` ->
    row-major 224x224 tiles, then the bicubic global view -> `[R*C + 1, T, 3, 224, 224]`."""
    rows, cols = frames.shape[-2] // 224, frames.shape[-1] // 224
    tiles = [frames[..., r * 224 : (r + 1) * 224, c * 224 : (c + 1) * 224] for r in range(rows) for c in range(cols)]
    global_view = F.interpolate(frames, size=(224, 224), mode="bicubic", align_corners=False)
    return torch.stack(tiles + [global_view])


def write_h264(path: Path, num_frames: int = 30, width: int = 96, height: int = 64, fps: int = 10) -> str:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"}
        yy, xx = np.mgrid[0:height, 0:width]
        for index in range(num_frames):
            frame = np.stack([(xx * 3 + index * 9) % 256, (yy * 2 + index * 5) % 256, (xx + yy) % 256], -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


@pytest.fixture(scope="module")
def iv2_hd_processor():
    return build_fixture_processor(fixture_dir("internvideo2_chat", "tiny_hd"), "internvideo2-chat-8b-hd")


@pytest.fixture(scope="module")
def mistral_processor():
    return build_fixture_processor(fixture_dir("videochat2", "videochat2_it_mistral"), "videochat2-mistral-7b")


# ------------------------------------------------------------------------------------------------ helper


def test_get_num_visual_tokens():
    assert get_num_visual_tokens(1) == 96
    assert get_num_visual_tokens(3) == 288
    assert get_num_visual_tokens(7, num_query_tokens=6) == 42
    with pytest.raises(ValueError, match="num_clips"):
        get_num_visual_tokens(0)
    with pytest.raises(ValueError, match="num_query_tokens"):
        get_num_visual_tokens(1, num_query_tokens=0)


# ------------------------------------------------------------------------------------------------ InternVideo2-Chat


def iv2_conversation(meta: dict, case: str, video) -> list:
    instruction = meta[case]["chat_kwargs"]["instruction"]
    conversation = [{"role": "system", "content": instruction}] if instruction else []
    conversation.append(
        {
            "role": "user",
            "content": [
                {"type": "video", "video": video, "fps": meta["fps_used_for_time_msg"]},
                {"type": "text", "text": meta["user_prompt"]},
            ],
        }
    )
    return conversation


@pytest.mark.parametrize("folder", sorted(IV2_FIXTURES))
@pytest.mark.parametrize("case", ["default", "instr"])
def test_internvideo2_fixture(folder, case):
    path = fixture_dir("internvideo2_chat", folder)
    meta, inputs = load_fixture(path)
    processor = build_fixture_processor(path, IV2_FIXTURES[folder])
    add_time_message = bool(meta[case]["chat_kwargs"]["msg"])
    conversation = iv2_conversation(meta, case, inputs["video_frames_uint8_all"].numpy())
    num_clips = 3 if folder == "tiny_hd" else 1

    # The template renders one <Video><video></Video> per video; the original writes one per clip.
    prompt = processor.apply_chat_template(
        conversation, add_generation_prompt=True, add_time_message=add_time_message, processor_kwargs={"num_frames": 8}
    )
    recorded = meta[case]["conversation"].replace("[<VID_PLH>]", "<video>")
    # The system message opens the rendered prompt a second time, as the Q-Former's instruction (removed by __call__).
    prompt, qformer_instruction = split_instruction(prompt)
    assert qformer_instruction == (meta[case]["chat_kwargs"]["instruction"] or None)
    assert prompt.replace("<Video><video></Video>", "<Video><video></Video>" * num_clips) == recorded
    assert meta[case]["chat_kwargs"]["msg"] in prompt

    out = processor.apply_chat_template(
        conversation,
        add_generation_prompt=True,
        add_time_message=add_time_message,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={"num_frames": 8, "return_metadata": True},
    )
    assert original_ids(processor, out["input_ids"][0]) == inputs[f"{case}.input_ids"].tolist()
    assert out["attention_mask"][0].tolist() == inputs[f"{case}.attention_mask"].tolist()
    visual = out["input_ids"][0] == processor.video_token_id
    assert visual.tolist() == inputs[f"{case}.video_idx"].tolist()
    assert int(visual.sum()) == get_num_visual_tokens(num_clips) == 96 * num_clips
    assert out["video_metadata"][0].frames_indices == inputs["frame_indices"].tolist()

    expected_pixels = inputs["pixel_values"].reshape(num_clips, 8, 3, 224, 224)
    assert out["pixel_values_videos"].shape == expected_pixels.shape
    torch.testing.assert_close(out["pixel_values_videos"], expected_pixels, atol=1e-5, rtol=0)

    if f"{case}.qformer_input_ids" in inputs:  # HD with an instruction: [instruction] * clips
        assert out["video_qformer_input_ids"].tolist() == inputs[f"{case}.qformer_input_ids"].tolist()
        assert (
            out["video_qformer_attention_mask"].tolist() == inputs[f"{case}.qformer_attention_mask"][:, 96:].tolist()
        )
    else:  # non-HD never sends text; HD without instruction neither
        assert "video_qformer_input_ids" not in out and "video_qformer_attention_mask" not in out

    # The string path gives the same tensors as the template path.
    direct = processor(
        text=prompt,
        videos=inputs["video_frames_uint8_sampled"].numpy(),
        return_tensors="pt",
        qformer_text=meta[case]["chat_kwargs"]["instruction"] if folder == "tiny_hd" else None,
    )
    assert sorted(direct.keys()) == sorted(k for k in out.keys() if k != "video_metadata")
    for key in direct:
        assert torch.equal(direct[key], out[key]), key


def test_internvideo2_segments_each_start_with_bos(iv2_hd_processor):
    meta, inputs = load_fixture(fixture_dir("internvideo2_chat", "tiny_hd"))
    out = iv2_hd_processor(
        text="[INST] <Video><video></Video>[/INST] [INST] Describe the action step by step. [/INST]",
        videos=inputs["video_frames_uint8_sampled"].numpy(),
    )
    ids = out["input_ids"][0]
    for index in range(4):
        assert inputs[f"default.segment{index}_ids"][0].item() == 1
    assert ids.count(1) == 4  # one BOS per text segment: 3 clips -> 4 segments
    without_bos = iv2_hd_processor(
        text="[INST] <Video><video></Video>[/INST]",
        videos=inputs["video_frames_uint8_sampled"].numpy(),
        add_special_tokens=False,
    )
    assert 1 not in without_bos["input_ids"][0]


def test_internvideo2_multi_turn_and_answer_prompt(iv2_hd_processor):
    conversation = [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "q1"}]},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]
    prompt = iv2_hd_processor.apply_chat_template(
        conversation, add_generation_prompt=True, answer_prompt="Best option:("
    )
    # chat(): "[INST] " + video + msg + "[/INST]", then " [INST] q [/INST]a</s>" per history turn,
    # then " [INST] q [/INST]" + answer prompt
    assert prompt == "[INST] <Video><video></Video>[/INST] [INST] q1 [/INST]a1</s> [INST] q2 [/INST]Best option:("


# ------------------------------------------------------------------------------------------ VideoChat2 / VideoChat


def vc2_conversation(folder: str, case: str, meta: dict, inputs: dict) -> tuple[list, dict]:
    spec = meta["cases"][case]
    phi = folder == "videochat2_it_phi"
    if case == "image":
        question = "Describe the following image in detail." if phi else "Describe the following image in details."
        image = Image.fromarray(inputs["video_uint8"][meta["image_frame_index"]].numpy())
        visual = {"type": "image", "image": image}
    else:
        question = "Describe the video in detail." if phi else "Describe the video in details."
        visual = {"type": "video", "video": inputs["video_uint8"].numpy(), "fps": meta["fps"]}
    conversation = []
    if case == "mcq":
        conversation.append({"role": "system", "content": spec["qformer_instruction"]})
        question = spec["qformer_instruction"] + MCQ_QUESTION
    conversation.append({"role": "user", "content": [visual, {"type": "text", "text": question}]})
    if spec["answer_prompt"]:
        conversation.append({"role": "assistant", "content": spec["answer_prompt"]})
        return conversation, {"continue_final_message": True}
    return conversation, {"add_generation_prompt": True}


@pytest.mark.parametrize("folder,case", vc2_cases())
def test_videochat2_fixture(folder, case):
    path = fixture_dir("videochat2", folder)
    meta, inputs = load_fixture(path)
    spec = meta["cases"][case]
    overrides = {"qformer_instruction_mode": "full"} if case == "chat_instrlist" else {}
    processor = build_fixture_processor(path, VC2_FIXTURES[folder], **overrides)
    assert processor.num_query_tokens == 6  # tiny Q-Former: 4 queries + 2 extra (README)
    conversation, generation = vc2_conversation(folder, case, meta, inputs)
    num_frames = len(inputs["frame_indices"])
    hd = folder == "videochat2_it_hd_mistral"

    prompt = processor.apply_chat_template(conversation, **generation, processor_kwargs={"num_frames": num_frames})
    llm_prompt, qformer_instruction = split_instruction(prompt)
    assert llm_prompt == spec["prompt"].replace("<VideoHere>", "<video>").replace("<ImageHere>", "<image>")
    assert qformer_instruction == (spec["qformer_instruction"] if case == "mcq" else None)

    out = processor.apply_chat_template(
        conversation,
        **generation,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={"num_frames": num_frames},
    )
    num_clips = 7 if hd else 1  # 240x416 with hd_num 12 -> 2x3 tiles + global
    segment0, segment1 = spec["segment_ids"]
    num_visual = get_num_visual_tokens(num_clips, processor.num_query_tokens)
    assert original_ids(processor, out["input_ids"][0]) == segment0 + [0] * num_visual + segment1
    assert out["attention_mask"][0].tolist() == [1] * (len(segment0) + num_visual + len(segment1))

    modality = "image" if case == "image" else "video"
    if folder == "videochat_v1":  # no Q-Former text
        assert f"{modality}_qformer_input_ids" not in out
    else:
        assert out[f"{modality}_qformer_input_ids"].tolist() == inputs[f"{case}.qformer_input_ids"].tolist()
        expected_mask = inputs[f"{case}.qformer_attention_mask"][:, processor.num_query_tokens :]
        assert out[f"{modality}_qformer_attention_mask"].tolist() == expected_mask.tolist()

    if case == "image":
        expected = inputs["image_pixel_values"][0]
        expected = tile_hd(expected)[:, 0] if hd else expected
        actual = out["pixel_values"]
    else:
        expected = inputs["pixel_values"][0]
        expected = tile_hd(expected) if hd else expected[None]
        actual = out["pixel_values_videos"]
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)

    direct = processor(
        text=prompt,
        videos=None if case == "image" else inputs["video_uint8"].numpy()[inputs["frame_indices"].numpy()],
        images=conversation[-2 if generation.get("continue_final_message") else -1]["content"][0].get("image"),
        return_tensors="pt",
    )
    # the rendered prompt alone carries the system message to the Q-Former
    for key in out:
        assert torch.equal(direct[key], out[key]), key


def test_hd_first_char_and_full_instruction_modes():
    path = fixture_dir("videochat2", "videochat2_it_hd_mistral")
    demo = build_fixture_processor(path, "videochat2-hd-mistral-7b")
    full = build_fixture_processor(path, "videochat2-hd-mistral-7b", qformer_instruction_mode="full")
    assert demo.qformer_instruction_mode == "first_char"
    video = np.zeros((4, 240, 416, 3), dtype=np.uint8)
    first = demo(text="<video>", videos=video)["video_qformer_input_ids"]
    whole = full(text="<video>", videos=video)["video_qformer_input_ids"]
    assert len(first) == len(whole) == 7
    assert demo.qformer_tokenizer.convert_ids_to_tokens(first[0]) == ["[CLS]", "w", "[SEP]"]
    assert len(whole[0]) > 3


# ------------------------------------------------------------------------------------------------ token counts


@pytest.mark.parametrize(
    "folder,preset,frame_size,clips",
    [
        (("internvideo2_chat", "tiny_hd"), "internvideo2-chat-8b-hd", (90, 160), 3),
        (("internvideo2_chat", "tiny_nonhd"), "internvideo2-chat-8b", (90, 160), 1),
        (("videochat2", "videochat2_it_hd_mistral"), "videochat2-hd-mistral-7b", (240, 416), 7),
        (("videochat2", "videochat2_it_vicuna"), "videochat2-vicuna-7b", (240, 416), 1),
    ],
)
def test_placeholder_count_matches_helper_and_multimodal_tokens(folder, preset, frame_size, clips):
    processor = build_fixture_processor(fixture_dir(*folder), preset)
    height, width = frame_size
    video = np.random.default_rng(0).integers(0, 256, (4, height, width, 3), dtype=np.uint8)
    out = processor(text="a <video> b", videos=video, return_mm_token_type_ids=True)
    count = out["input_ids"][0].count(processor.video_token_id)
    helper = get_num_visual_tokens(clips, processor.num_query_tokens)
    mm = processor._get_num_multimodal_tokens(video_sizes=[(4, height, width)], image_sizes=[(height, width)])
    assert count == helper == mm.num_video_tokens[0]
    assert out["mm_token_type_ids"][0].count(2) == helper
    assert len(out["pixel_values_videos"]) == clips
    image_out = processor(text="<image>", images=Image.fromarray(video[0]))
    assert image_out["input_ids"][0].count(processor.image_token_id) == mm.num_image_tokens[0]


def test_returned_keys_are_model_input_names(iv2_hd_processor):
    video = np.zeros((8, 90, 160, 3), dtype=np.uint8)
    image = Image.fromarray(np.zeros((90, 160, 3), dtype=np.uint8))
    out = iv2_hd_processor(
        text="<video> <image>", videos=video, images=image, qformer_text="you are", return_tensors="pt"
    )
    assert set(out.keys()) == set(iv2_hd_processor.model_input_names)
    # one Q-Former row per clip, per modality
    assert out["video_qformer_input_ids"].shape[0] == len(out["pixel_values_videos"]) == 3
    assert out["image_qformer_input_ids"].shape[0] == len(out["pixel_values"]) == 3
    assert out["video_grid_thw"].tolist() == [[3, 1, 1]] and out["image_grid_thw"].tolist() == [[3, 1, 1]]


# ------------------------------------------------------------------------------------------------ batching


def test_batched_left_padding(mistral_processor):
    video = np.random.default_rng(1).integers(0, 256, (8, 64, 96, 3), dtype=np.uint8)
    texts = [
        "[INST] <Video><video></Video> [/INST]",
        "[INST] <Video><video></Video> [/INST] [INST] a longer question [/INST]",
    ]
    batch = mistral_processor(text=texts, videos=[video, video], return_tensors="pt")
    singles = [mistral_processor(text=t, videos=video, return_tensors="pt") for t in texts]
    assert mistral_processor.tokenizer.pad_token_id is None
    pad_id = mistral_processor.tokenizer.eos_token_id
    assert pad_id not in (0, mistral_processor.video_token_id)
    length = batch["input_ids"].shape[1]
    for row, single in enumerate(singles):
        n = single["input_ids"].shape[1]
        assert torch.equal(batch["input_ids"][row, length - n :], single["input_ids"][0])
        assert batch["input_ids"][row, : length - n].eq(pad_id).all()
        assert batch["attention_mask"][row].tolist() == [0] * (length - n) + [1] * n
    assert torch.equal(batch["pixel_values_videos"], torch.cat([singles[0]["pixel_values_videos"]] * 2))
    assert batch["video_qformer_input_ids"].shape[0] == 2
    assert batch["video_grid_thw"].tolist() == [[1, 1, 1], [1, 1, 1]]

    right = mistral_processor(text=texts, videos=[video, video], padding_side="right", return_tensors="pt")
    n = singles[0]["input_ids"].shape[1]
    assert torch.equal(right["input_ids"][0, :n], singles[0]["input_ids"][0])
    assert right["attention_mask"][0, n:].eq(0).all()


def test_qformer_instructions_left_padded(mistral_processor):
    video = np.zeros((8, 64, 96, 3), dtype=np.uint8)
    out = mistral_processor(
        text=["<video>", "<video>"], videos=[video, video], qformer_text=["watch", "watch the video"]
    )
    short, long = out["video_qformer_input_ids"]
    assert len(short) == len(long)
    assert out["video_qformer_attention_mask"][0][0] == 0 and out["video_qformer_attention_mask"][0][-1] == 1
    assert short[0] == mistral_processor.qformer_tokenizer.pad_token_id


# ------------------------------------------------------------------------------------------------ errors


def test_placeholder_and_video_count_errors(mistral_processor):
    video = np.zeros((8, 64, 96, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="Found total 2 <video> tokens and 1 videos"):
        mistral_processor(text="<video> <video>", videos=video)
    with pytest.raises(ValueError, match="Found total 1 <video> tokens and 2 videos"):
        mistral_processor(text="<video>", videos=[video, video])
    with pytest.raises(ValueError, match="Found total 1 <video> tokens and 0 videos"):
        mistral_processor(text="<video>")
    with pytest.raises(ValueError, match="Found total 0 <image> tokens and 1 images"):
        mistral_processor(text="no image here", images=Image.fromarray(video[0]))


def test_truncation(mistral_processor):
    video = np.zeros((8, 64, 96, 3), dtype=np.uint8)
    text = "<video> " + "word " * 40
    full = mistral_processor(text=text, videos=video)["input_ids"][0]
    with pytest.raises(ValueError, match="would cut .* visual placeholder"):
        mistral_processor(text="word " * 40 + "<video>", videos=video, truncation=True, max_length=20)
    truncated = mistral_processor(text=text, videos=video, truncation=True, max_length=20)["input_ids"][0]
    assert truncated == full[:20]
    with pytest.raises(ValueError, match="max_length"):
        mistral_processor(text=text, videos=video, truncation=True)


def test_bad_inputs(mistral_processor, tmp_path):
    video = np.zeros((8, 64, 96, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="unknown keyword"):
        mistral_processor(text="<video>", videos=video, not_an_option=True)
    with pytest.raises(ValueError, match="4 dimensions"):
        mistral_processor(text="<video>", videos=np.zeros((64, 96, 3, 1, 1, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="4 dimensions"):
        mistral_processor(text="<video>", videos=torch.zeros(3, 64, 96))
    with pytest.raises(ValueError, match="same number of frames"):
        mistral_processor(text="<video><video>", videos=[video, video[:4]])
    with pytest.raises(ValueError, match="string or a non-empty list"):
        mistral_processor(text=[1, 2])
    with pytest.raises(ValueError, match="one string or a list of 2"):
        mistral_processor(text="<video><video>", videos=[video, video], qformer_text=["only one"])
    with pytest.raises(FileNotFoundError, match="Video file not found"):
        mistral_processor(text="<video>", videos=str(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match="Only local video files and http"):
        mistral_processor(text="<video>", videos="ftp://example.com/a.mp4")
    with pytest.raises(ValueError, match="Could not download the video http://127.0.0.1:9/a.mp4"):
        mistral_processor(text="<video>", videos="http://127.0.0.1:9/a.mp4")  # nothing listens there
    with pytest.raises(ValueError, match="audio"):
        mistral_processor(text="hi", audio=np.zeros(16000))
    with pytest.raises(ValueError, match="does not support the tokenizer option"):
        mistral_processor(text="hi", return_overflowing_tokens=True)


def test_qformer_text_rejected_without_qformer_instruction():
    processor = build_fixture_processor(fixture_dir("internvideo2_chat", "tiny_nonhd"), "internvideo2-chat-8b")
    with pytest.raises(ValueError, match="takes no instruction"):
        processor(text="<video>", videos=np.zeros((8, 90, 160, 3), dtype=np.uint8), qformer_text="hello")


# ------------------------------------------------------------------------------------------------ save / load


def test_save_load_round_trip(iv2_hd_processor, tmp_path):
    iv2_hd_processor.save_pretrained(tmp_path)
    assert (tmp_path / "chat_template.jinja").read_text() == load_chat_template("internvideo2-chat-8b-hd")
    assert (tmp_path / "qformer_tokenizer" / "tokenizer_config.json").is_file()
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert "chat_template" not in saved
    assert saved["video_clip_separator"] == "</Video><Video>" and saved["add_bos_to_every_segment"] is True

    reloaded = VideoChatProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == iv2_hd_processor.to_dict()
    assert reloaded.chat_template == iv2_hd_processor.chat_template
    assert reloaded.qformer_tokenizer.bos_token == "[DEC]" and len(reloaded.qformer_tokenizer) == 92
    assert reloaded.qformer_tokenizer.padding_side == reloaded.qformer_tokenizer.truncation_side == "left"

    from transformers import AutoProcessor

    auto = AutoProcessor.from_pretrained(tmp_path)
    assert type(auto) is VideoChatProcessor
    video = np.random.default_rng(2).integers(0, 256, (8, 90, 160, 3), dtype=np.uint8)
    kwargs = {
        "text": "[INST] <Video><video></Video>[/INST]",
        "videos": video,
        "qformer_text": "you are",
        "return_tensors": "pt",
    }
    expected = iv2_hd_processor(**kwargs)
    for processor in (reloaded, auto):
        out = processor(**kwargs)
        assert out.keys() == expected.keys()
        for key in out:
            assert torch.equal(out[key], expected[key]), key


# ------------------------------------------------------------------------------------------------ video files


def test_apply_chat_template_with_h264_file(mistral_processor, tmp_path):
    path = write_h264(tmp_path / "clip.mp4")
    for block in ({"type": "video", "path": path}, {"type": "video", "url": "file://" + path}, {"video": path}):
        conversation = [{"role": "user", "content": [block, {"type": "text", "text": "What happens?"}]}]
        out = mistral_processor.apply_chat_template(
            conversation,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"num_frames": 6},
        )
        prompt = mistral_processor.apply_chat_template(conversation, add_generation_prompt=True)
        assert prompt == "[INST] <Video><video></Video> [/INST] [INST] What happens? [/INST]"
        direct = mistral_processor(text=prompt, videos=path, num_frames=6, return_tensors="pt")
        assert out.keys() == direct.keys()
        for key in out:
            assert torch.equal(out[key], direct[key]), key
        assert out["pixel_values_videos"].shape == (1, 6, 3, 224, 224)


def test_time_message_from_h264_file(tmp_path):
    path = write_h264(tmp_path / "clip.mp4", num_frames=25, fps=10)
    processor = build_fixture_processor(fixture_dir("videochat2", "videochat2_it_phi"), "videochat2-phi3-mini")
    assert processor.add_time_message
    conversation = [
        {"role": "user", "content": [{"type": "video", "path": path}, {"type": "text", "text": "Describe."}]}
    ]
    prompt = processor.apply_chat_template(
        conversation, add_generation_prompt=True, processor_kwargs={"num_frames": 5}
    )
    # get_index(25, 5): seg 4.8, start 2 -> frames 2, 7, 12, 16, 21 at 10 fps
    message = format_time_message(get_segment_indices(25, 5).tolist(), 10.0)
    assert message == "The video contains 5 frames sampled at 0.2, 0.7, 1.2, 1.6, 2.1 seconds."
    assert prompt == f"<|user|>\n<Video><video></Video> {message}\nDescribe.<|end|>\n<|assistant|>"
    out = processor.apply_chat_template(
        conversation,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={"num_frames": 5},
    )
    direct = processor(text=prompt, videos=path, num_frames=5, return_tensors="pt")
    for key in direct:
        assert torch.equal(out[key], direct[key]), key


def test_return_metadata_and_sampling(mistral_processor):
    video = np.random.default_rng(3).integers(0, 256, (12, 64, 96, 3), dtype=np.uint8)
    out = mistral_processor(
        text="<video>", videos=video, num_frames=8, video_metadata={"fps": 3.0}, return_metadata=True
    )
    assert out["video_metadata"][0].frames_indices == [0, 1, 3, 4, 6, 7, 8, 10]  # get_index(12, 8)
    assert out["pixel_values_videos"].shape[1] == 8
    unsampled = mistral_processor(text="<video>", videos=video)
    assert unsampled["pixel_values_videos"].shape[1] == 12
    assert "video_metadata" not in unsampled


# ------------------------------------------------------------------------------------------------ presets


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_and_renders(preset, mistral_processor):
    processor = build_processor(
        preset, tokenizer=mistral_processor.tokenizer, qformer_tokenizer=mistral_processor.qformer_tokenizer
    )
    conversation = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}]
    prompt = processor.apply_chat_template(conversation, add_generation_prompt=True, add_time_message=False)
    assert prompt.count("<video>") == 1 and "Q?" in prompt
    assert processor.image_processor.num_frames in (8, 16)
    with pytest.raises(ValueError, match="unknown preset"):
        build_processor("nope", tokenizer=None, qformer_tokenizer=None)


def test_video_input_types_agree(mistral_processor):
    video = np.random.default_rng(4).integers(0, 256, (8, 64, 96, 3), dtype=np.uint8)
    expected = mistral_processor(text="<video>", videos=video, return_tensors="pt")["pixel_values_videos"]
    variants = [
        torch.from_numpy(video),
        [Image.fromarray(frame) for frame in video],
        list(video),
        [video],
        video[None],
    ]
    for variant in variants:
        out = mistral_processor(text="<video>", videos=variant, return_tensors="pt")
        assert torch.equal(out["pixel_values_videos"], expected)
    as_numpy = mistral_processor(text=["<video> a", "<video>"], videos=[video, video], return_tensors="np")
    assert isinstance(as_numpy["input_ids"], np.ndarray) and as_numpy["input_ids"].shape[0] == 2
    assert list(as_numpy.keys())[:2] == ["input_ids", "attention_mask"]


def test_qformer_tokenizer_optional_only_without_instruction(mistral_processor, tmp_path):
    processor = build_processor("videochat-7b", mistral_processor.tokenizer, None)
    out = processor(text="<video>", videos=np.zeros((8, 64, 96, 3), dtype=np.uint8))
    assert "qformer_input_ids" not in out
    processor.save_pretrained(tmp_path)
    assert VideoChatProcessor.from_pretrained(tmp_path).to_dict() == processor.to_dict()
    with pytest.raises(ValueError, match="qformer_tokenizer` is required"):
        build_processor("videochat2-mistral-7b", mistral_processor.tokenizer, None)


# ------------------------------------------------------------------------------------------------ end to end


@pytest.mark.parametrize(
    "family,folder,preset",
    [("internvideo2_chat", folder, preset) for folder, preset in sorted(IV2_FIXTURES.items())]
    + [("videochat2", folder, preset) for folder, preset in sorted(VC2_FIXTURES.items())],
)
def test_raw_frames_through_processor_and_model_reproduce_recorded_logits(family, folder, preset):
    """Raw uint8 frames + the recorded prompt -> our processor -> the converted fixture model == original logits."""
    import importlib

    path = fixture_dir(family, folder)
    adapter = "videochat.parity.internvideo2_chat" if family == "internvideo2_chat" else "videochat.parity.videochat2"
    model = importlib.import_module(adapter).load_fixture(path).model.eval()
    processor = build_fixture_processor(path, preset)
    # a converted folder's config carries its tokenizer's placeholder ids; the fixture model is built without one
    model.config.video_token_id, model.config.image_token_id = processor.video_token_id, processor.image_token_id
    meta, inputs = load_fixture(path)
    expected = load_file(path / "expected.safetensors")
    if family == "internvideo2_chat":
        case = "instr"
        prompt = meta[case]["conversation"].replace("[<VID_PLH>]", "<video>")
        num_clips = prompt.count("<video>")
        prompt = prompt.replace("<Video><video></Video>" * num_clips, "<Video><video></Video>")
        qformer_text = meta["instruction"] if folder == "tiny_hd" else None
        frames = inputs["video_frames_uint8_sampled"].numpy()
    else:
        case = "chat"
        prompt = meta["cases"][case]["prompt"].replace("<VideoHere>", "<video>")
        qformer_text = None
        frames = inputs["video_uint8"].numpy()[inputs["frame_indices"].numpy()]
    batch = processor(text=prompt, videos=frames, qformer_text=qformer_text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    reference = expected[f"{case}.logits"].reshape(logits.shape)
    assert (logits - reference).abs().max().item() <= 1e-5 * max(1.0, reference.abs().max().item())
