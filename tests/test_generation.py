# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""`generate` on every encoder family (InternVideo2, UMT, EVA-GMHRA with the text-free Q-Former), a video AND an
image in every sample of a left-padded batch: the checks transformers' `GenerationTesterMixin` would make (it is not
in the pinned release's sdist, see `hf_test_mixins.py`) and what decoding keeps in memory.

Greedy decoding equals an argmax loop over full forwards; sampling with `top_k=1` equals greedy; greedy, sampling
and beam search give the same tokens with the static cache as with the dynamic one, and with the decoding step
compiled (`fullgraph=True`); `num_return_sequences` rows belong to their prompt; pre-computed `mm_encoder_outputs`
give the same tokens as pixels and are left untouched; after prefill generate holds only the projected features.
"""

import pytest
import torch
from conftest import tiny_config
from transformers import CompileConfig, GenerationConfig

from videochat import VideoChatForConditionalGeneration


ENCODERS = ("internvideo2", "umt", "eva_gmhra")
VIDEO_ID, IMAGE_ID, PAD_ID, EOS_ID = 5, 6, 2, 2
NUM_QUERIES = 5  # tiny_config: 2 query tokens + 3 extra
NEW_TOKENS = 5


def build_model(encoder: str) -> VideoChatForConditionalGeneration:
    torch.manual_seed(0)
    config = tiny_config(encoder, video_token_id=VIDEO_ID, image_token_id=IMAGE_ID)
    return VideoChatForConditionalGeneration(config).eval()


def batch_inputs(model) -> dict:
    """Two left-padded prompts `[BOS] text <video> text <image> text`, one clip and one image each."""
    video, image = [VIDEO_ID] * NUM_QUERIES, [IMAGE_ID] * NUM_QUERIES
    prompts = [[1, 7, *video, 9, *image, 10], [1, 7, 8, 12, *video, 13, 9, *image, 10, 11]]
    width = max(map(len, prompts))
    input_ids = torch.full((2, width), PAD_ID)
    attention_mask = torch.zeros(2, width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(prompt)
        attention_mask[row, width - len(prompt) :] = 1
    generator = torch.Generator().manual_seed(1)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "pixel_values_videos": torch.randn(2, 4, 3, 28, 28, generator=generator),
        "pixel_values": torch.randn(2, 3, 28, 28, generator=generator),
    }
    if model.config.qformer_takes_text:
        for modality in ("video", "image"):
            rows = torch.randint(3, 50, (2, 6), generator=generator)
            inputs[f"{modality}_qformer_input_ids"] = rows
            inputs[f"{modality}_qformer_attention_mask"] = torch.ones_like(rows)
    return inputs


def generate(model, inputs, **settings):
    config = GenerationConfig(
        **{
            "max_new_tokens": NEW_TOKENS,
            "min_new_tokens": NEW_TOKENS,
            "pad_token_id": PAD_ID,
            "eos_token_id": EOS_ID,
            "do_sample": False,
            "suppress_tokens": [VIDEO_ID, IMAGE_ID],  # tiny vocabulary: the placeholder ids are ordinary rows
            **settings,
        }
    )
    with torch.no_grad():
        return model.generate(**inputs, generation_config=config)[:, inputs["input_ids"].shape[1] :]


@pytest.fixture(scope="module", params=ENCODERS)
def model_and_inputs(request):
    model = build_model(request.param)
    return model, batch_inputs(model)


def test_greedy_equals_an_argmax_loop_over_full_forwards(model_and_inputs):
    model, inputs = model_and_inputs
    input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
    visual = {key: value for key, value in inputs.items() if key not in ("input_ids", "attention_mask")}
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=False,
                **visual,
            ).logits[:, -1]
            logits[:, [EOS_ID, VIDEO_ID, IMAGE_ID]] = -float("inf")  # min_new_tokens, suppress_tokens
            input_ids = torch.cat([input_ids, logits.argmax(-1, keepdim=True)], dim=1)
            attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
    expected = input_ids[:, inputs["input_ids"].shape[1] :]
    assert generate(model, inputs).tolist() == expected.tolist()


def test_sampling_with_top_k_one_is_greedy(model_and_inputs):
    model, inputs = model_and_inputs
    assert generate(model, inputs, do_sample=True, top_k=1).tolist() == generate(model, inputs).tolist()


@pytest.mark.parametrize(
    "settings",
    [{}, {"do_sample": True, "top_k": 0, "temperature": 0.7}, {"num_beams": 3}],
    ids=["greedy", "sample", "beam"],
)
def test_static_cache_gives_the_dynamic_cache_tokens(model_and_inputs, settings):
    model, inputs = model_and_inputs
    torch.manual_seed(3)
    dynamic = generate(model, inputs, **settings)
    torch.manual_seed(3)
    static = generate(model, inputs, cache_implementation="static", **settings)
    assert static.tolist() == dynamic.tolist()


@pytest.mark.heavy
@pytest.mark.parametrize("settings", [{}, {"do_sample": True}], ids=["greedy", "sample"])
def test_compiled_decoding_gives_the_eager_tokens(settings):
    """The decoding step compiles as one graph (`fullgraph=True`, static cache): `_can_compile_fullgraph`. Decoding
    steps run the LLM and the embedding lookup only, so one encoder family covers them."""
    model = build_model("internvideo2")
    inputs = batch_inputs(model)
    torch.manual_seed(5)
    eager = generate(model, inputs, **settings)
    compile_config = CompileConfig(fullgraph=True, backend="aot_eager", mode=None, dynamic=False)
    compile_config._compile_all_devices = True  # generate compiles on accelerators only by default
    torch._dynamo.reset()
    try:
        torch.manual_seed(5)
        compiled = generate(model, inputs, cache_implementation="static", compile_config=compile_config, **settings)
        assert getattr(model, "_compiled_call", None) is not None
    finally:
        model.__dict__.pop("_compiled_call", None)
        torch._dynamo.reset()
    assert compiled.tolist() == eager.tolist()


@pytest.mark.parametrize("settings", [{"num_beams": 3}, {"do_sample": True}], ids=["beam", "sample"])
def test_num_return_sequences_rows_follow_their_prompt(model_and_inputs, settings):
    model, inputs = model_and_inputs
    torch.manual_seed(4)
    batched = generate(model, inputs, num_return_sequences=3, **settings)
    assert batched.shape == (6, NEW_TOKENS)
    if "num_beams" not in settings:
        return
    for row in range(2):
        single = {key: value[row : row + 1] for key, value in inputs.items()}
        single["input_ids"] = single["input_ids"][:, single["attention_mask"][0].argmax() :]
        single["attention_mask"] = single["attention_mask"][:, single["attention_mask"][0].argmax() :]
        alone = generate(model, single, num_return_sequences=3, **settings)
        assert batched[3 * row : 3 * row + 3].tolist() == alone.tolist()


@pytest.mark.parametrize("settings", [{}, {"num_beams": 2, "num_return_sequences": 2}], ids=["greedy", "beam"])
def test_precomputed_encoder_outputs_give_the_pixel_tokens_and_stay_untouched(model_and_inputs, settings):
    model, inputs = model_and_inputs
    with torch.no_grad():
        encoded = {
            "video": model.get_video_features(
                inputs["pixel_values_videos"],
                inputs.get("video_qformer_input_ids"),
                inputs.get("video_qformer_attention_mask"),
            ),
            "image": model.get_image_features(
                inputs["pixel_values"],
                inputs.get("image_qformer_input_ids"),
                inputs.get("image_qformer_attention_mask"),
            ),
        }
    before = {modality: output.pooler_output.clone() for modality, output in encoded.items()}
    text_only = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    from_features = generate(model, {**text_only, "mm_encoder_outputs": encoded}, **settings)
    assert from_features.tolist() == generate(model, inputs, **settings).tolist()
    for modality, output in encoded.items():
        assert torch.equal(output.pooler_output, before[modality])  # beam expansion did not touch ours
        assert output.last_hidden_state is not None and output.qformer_outputs is not None


def tensor_bytes(value, seen: set) -> int:
    """Bytes of the distinct tensor storages reachable from `value` (dicts, ModelOutputs, lists, tuples)."""
    if isinstance(value, torch.Tensor):
        pointer = value.untyped_storage().data_ptr()
        if pointer in seen:
            return 0
        seen.add(pointer)
        return value.untyped_storage().nbytes()
    if isinstance(value, dict):
        return sum(tensor_bytes(item, seen) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(item, seen) for item in value)
    return 0


@pytest.mark.parametrize("settings", [{}, {"num_beams": 2}], ids=["greedy", "beam"])
def test_after_prefill_generate_holds_only_the_projected_features(model_and_inputs, settings):
    """The encoder tokens and Q-Former states of `get_*_features` are dropped before decoding: the model kwargs
    that live through the decoding steps hold the projected features and the text inputs, nothing else."""
    model, inputs = model_and_inputs
    snapshots = []
    update = model._update_model_kwargs_for_generation

    def recording_update(outputs, model_kwargs, *args, **kwargs):
        updated = update(outputs, model_kwargs, *args, **kwargs)
        if not snapshots:
            snapshots.append({key: value for key, value in updated.items() if key != "past_key_values"})
        return updated

    model._update_model_kwargs_for_generation = recording_update
    try:
        generate(model, inputs, **settings)
    finally:
        del model._update_model_kwargs_for_generation
    held = snapshots[0]
    expand = settings.get("num_beams", 1)
    hidden = model.config.text_config.hidden_size
    features = 2 * 2 * expand * NUM_QUERIES * hidden * 4  # (video + image) x 2 samples x beams, float32
    assert set(held["mm_encoder_outputs"]) == {"video", "image"}
    assert tensor_bytes(held["mm_encoder_outputs"], set()) == features
    for output in held["mm_encoder_outputs"].values():
        assert output.last_hidden_state is None and output.vision_outputs is None and output.qformer_outputs is None
    text = sum(tensor_bytes(value, set()) for key, value in held.items() if key != "mm_encoder_outputs")
    assert text <= inputs["attention_mask"].numel() * expand * 8 * 4  # masks / positions: a few int64 rows
