# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Core model behaviour on tiny random configs: shapes, placeholders, generation, save/load, dtypes, errors."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import tiny_config

from videochat import VideoChatConfig, VideoChatForConditionalGeneration, VideoChatModel


NUM_QUERIES = 5  # tiny_config: 2 query tokens + 3 extra


def video_prompt(num_clips: int = 1, prefix=(1, 7, 8), suffix=(9, 10, 11)) -> torch.Tensor:
    return torch.tensor([[*prefix, *([0] * NUM_QUERIES * num_clips), *suffix]])


def random_clips(num_clips: int = 1, frames: int = 4, size: int = 28) -> torch.Tensor:
    return torch.randn(
        num_clips, frames, 3, size, size, generator=torch.Generator().manual_seed(num_clips * 7 + frames)
    )


# ----------------------------------------------------------------------------------------------- configuration
def test_config_round_trip_and_text_config(tmp_path):
    config = tiny_config()
    config.save_pretrained(tmp_path)
    reloaded = VideoChatConfig.from_pretrained(tmp_path)
    assert reloaded.to_dict() == config.to_dict()
    assert reloaded.get_text_config().model_type == "mistral"
    assert reloaded.qformer_config.encoder_hidden_size == reloaded.vision_config.hidden_size == 32
    assert reloaded.num_visual_queries == NUM_QUERIES


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"qformer_config": {"encoder_hidden_size": 77}}, "Inconsistent sub-configs"),
        ({"vision_config": {"model_type": "llama"}}, "vision_config.model_type"),
        ({"vision_config": {"hidden_size": 30, "num_attention_heads": 4}}, "divisible"),
        ({"num_query_tokens": 0}, "num_query_tokens"),
        ({"video_token_id": -1}, "non-negative token id"),
    ],
)
def test_config_inconsistencies_raise_value_error(fields, message):
    with pytest.raises(ValueError, match=message):
        VideoChatConfig(**fields)


# ----------------------------------------------------------------------------------------------- forward
def test_video_features_and_forward_shapes(tiny_model):
    clips = random_clips(num_clips=2)
    features = tiny_model.get_video_features(clips)
    assert features.pooler_output.shape == (2, NUM_QUERIES, 32)
    assert features.last_hidden_state.shape == (2, 1 + 4 * 4, 32)  # cls + 4 frames x 2x2 patches
    output = tiny_model(input_ids=video_prompt(2), pixel_values_videos=clips)
    assert output.logits.shape == (1, 6 + 2 * NUM_QUERIES, 120)
    assert output.video_hidden_states.shape == (2, NUM_QUERIES, 32)


def test_visual_features_replace_exactly_the_placeholders(tiny_model):
    clips = random_clips()
    input_ids = video_prompt()
    captured = {}
    hook = tiny_model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: captured.update(embeds=kwargs["inputs_embeds"]), with_kwargs=True
    )
    with torch.no_grad():
        tiny_model(input_ids=input_ids, pixel_values_videos=clips)
    hook.remove()
    features = tiny_model.get_video_features(clips).pooler_output
    text_embeds = tiny_model.get_input_embeddings()(input_ids)
    visual = input_ids[0] == 0
    torch.testing.assert_close(captured["embeds"][0, visual], features.reshape(-1, 32))
    torch.testing.assert_close(captured["embeds"][0, ~visual], text_embeds[0, ~visual])


def test_inputs_embeds_path_equals_input_ids_path(tiny_model):
    clips, input_ids = random_clips(), video_prompt()
    with torch.no_grad():
        from_ids = tiny_model(input_ids=input_ids, pixel_values_videos=clips).logits
        embeds = tiny_model.get_input_embeddings()(input_ids)
        from_embeds = tiny_model(inputs_embeds=embeds, pixel_values_videos=clips).logits
    torch.testing.assert_close(from_ids, from_embeds)


@pytest.mark.parametrize("frames", [1, 2, 4, 8, 16])
def test_any_frame_count_runs(tiny_model, frames):
    features = tiny_model.get_video_features(random_clips(frames=frames))
    assert features.last_hidden_state.shape == (1, 1 + frames * 4, 32)
    assert torch.isfinite(features.pooler_output).all()


def test_image_path_uses_separate_position_table(tiny_model):
    image = torch.randn(1, 3, 28, 28)
    features = tiny_model.get_image_features(image)
    assert features.last_hidden_state.shape == (1, 5, 32)
    embeddings = tiny_model.model.vision_model.embeddings
    assert embeddings.position_table(1) is embeddings.image_position_embeddings
    logits = tiny_model(input_ids=video_prompt(), pixel_values=image).logits
    assert torch.isfinite(logits).all()


def test_qformer_instruction_changes_features(tiny_model):
    clips = random_clips(num_clips=2)
    plain = tiny_model.get_video_features(clips).pooler_output
    ids = torch.tensor([[2, 5, 6, 3], [0, 2, 5, 3]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])
    instructed = tiny_model.get_video_features(clips, ids, mask)
    assert instructed.qformer_outputs.last_hidden_state.shape == (2, NUM_QUERIES + 4, 32)
    assert not torch.allclose(plain, instructed.pooler_output)
    with pytest.raises(ValueError, match="one row per clip"):
        tiny_model.get_video_features(clips, ids[:1], mask[:1])


def test_labels_give_a_loss_and_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    model = VideoChatForConditionalGeneration(tiny_config()).train()
    input_ids = video_prompt()
    labels = input_ids.clone()
    labels[input_ids == 0] = -100
    ids = torch.tensor([[2, 5, 6, 3]])
    loss = model(
        input_ids=input_ids,
        pixel_values_videos=random_clips(),
        labels=labels,
        qformer_input_ids=ids,
        qformer_attention_mask=torch.ones_like(ids),
    ).loss
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    no_grad = [
        name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())
    ]
    # the image position table serves one-frame inputs only, and the text FFN of the LAST Q-Former layer feeds
    # only the instruction rows, which the model discards (as in the original)
    last = "model.qformer.encoder.layer.1"
    assert sorted(no_grad) == sorted(
        [
            "model.vision_model.embeddings.image_position_embeddings",
            *(
                f"{last}.{name}"
                for name in (
                    "intermediate.dense.weight",
                    "intermediate.dense.bias",
                    "output.dense.weight",
                    "output.dense.bias",
                    "output.LayerNorm.weight",
                    "output.LayerNorm.bias",
                )
            ),
        ]
    )


def test_gradient_checkpointing_gives_the_same_loss():
    torch.manual_seed(0)
    model = VideoChatForConditionalGeneration(tiny_config()).train()
    for module in model.modules():  # no randomness: nn.Dropout modules and functional attention dropout
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
    inputs = {
        "input_ids": video_prompt(),
        "pixel_values_videos": random_clips(),
        "labels": video_prompt().masked_fill(video_prompt() == 0, -100),
    }
    reference = model(**inputs).loss
    model.gradient_checkpointing_enable()
    checkpointed = model(**inputs).loss
    checkpointed.backward()
    torch.testing.assert_close(reference, checkpointed)


def test_eager_and_sdpa_agree():
    torch.manual_seed(0)
    eager = VideoChatForConditionalGeneration._from_config(tiny_config(), attn_implementation="eager").eval()
    sdpa = VideoChatForConditionalGeneration._from_config(tiny_config(), attn_implementation="sdpa").eval()
    sdpa.load_state_dict(eager.state_dict())
    assert sdpa.model.vision_model.config._attn_implementation == "sdpa"
    assert eager.model.qformer.config._attn_implementation == "eager"
    inputs = {"input_ids": video_prompt(), "pixel_values_videos": random_clips()}
    with torch.no_grad():
        torch.testing.assert_close(eager(**inputs).logits, sdpa(**inputs).logits, atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------------------------- errors
def test_placeholder_count_mismatch_raises(tiny_model):
    with pytest.raises(ValueError, match="tokens do not match, tokens: 5, features: 10"):
        tiny_model(input_ids=video_prompt(1), pixel_values_videos=random_clips(num_clips=2))
    with pytest.raises(ValueError, match="the prompt has no <video> placeholder positions"):
        tiny_model(input_ids=torch.tensor([[1, 7, 8]]), pixel_values_videos=random_clips())


@pytest.mark.parametrize(
    "pixels, message",
    [
        (torch.randn(4, 3, 28, 28), "pixel_values_videos` must have shape"),
        (torch.randn(1, 4, 3, 28, 30), "28x28"),
        (torch.randn(1, 4, 4, 28, 28), "channels"),
        (torch.randn(1, 1, 4, 3, 28, 28), "pixel_values_videos` must have shape"),
    ],
)
def test_bad_pixel_values_raise(tiny_model, pixels, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(input_ids=video_prompt(), pixel_values_videos=pixels)


def test_bad_image_rank_and_mixed_modalities_raise(tiny_model):
    with pytest.raises(ValueError, match="num_images, channels, height, width"):
        tiny_model(input_ids=video_prompt(), pixel_values=torch.randn(1, 1, 3, 28, 28))
    with pytest.raises(ValueError, match="distinct `image_token_id` and `video_token_id`"):
        tiny_model(
            input_ids=video_prompt(), pixel_values=torch.randn(1, 3, 28, 28), pixel_values_videos=random_clips()
        )
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        tiny_model(pixel_values_videos=random_clips())


# ----------------------------------------------------------------------------------------------- generation
def test_vision_tower_runs_once_per_generate(tiny_model):
    calls = []
    tiny_model.model.vision_model.register_forward_hook(lambda *args: calls.append(1))
    output = tiny_model.generate(
        input_ids=video_prompt(),
        pixel_values_videos=random_clips(),
        max_new_tokens=6,
        do_sample=False,
        min_new_tokens=6,
    )
    assert output.shape[1] == video_prompt().shape[1] + 6
    assert len(calls) == 1


def test_greedy_generate_equals_manual_argmax_loop(tiny_model):
    input_ids, clips = video_prompt(), random_clips()
    generated = tiny_model.generate(
        input_ids=input_ids, pixel_values_videos=clips, max_new_tokens=5, do_sample=False, min_new_tokens=5
    )[0, input_ids.shape[1] :]
    sequence = input_ids
    eos = tiny_model.config.text_config.eos_token_id
    with torch.no_grad():
        for _ in range(5):
            logits = tiny_model(input_ids=sequence, pixel_values_videos=clips).logits[0, -1]
            logits[eos] = -float("inf")  # min_new_tokens
            sequence = torch.cat([sequence, logits.argmax().view(1, 1)], dim=1)
    assert generated.tolist() == sequence[0, input_ids.shape[1] :].tolist()


def test_left_padded_batch_matches_single_prompts(tiny_model):
    short = video_prompt(prefix=(1, 7), suffix=(9,))
    long = video_prompt(prefix=(1, 7, 8, 12, 13), suffix=(9, 10, 11, 14))
    clips = random_clips(num_clips=2)
    singles = []
    for index, prompt in enumerate((short, long)):
        out = tiny_model.generate(
            input_ids=prompt,
            pixel_values_videos=clips[index : index + 1],
            max_new_tokens=6,
            do_sample=False,
            min_new_tokens=6,
        )
        singles.append(out[0, prompt.shape[1] :].tolist())
    pad = 2
    width = long.shape[1]
    batch = torch.full((2, width), pad)
    mask = torch.zeros(2, width, dtype=torch.long)
    batch[0, width - short.shape[1] :] = short[0]
    mask[0, width - short.shape[1] :] = 1
    batch[1], mask[1] = long[0], 1
    out = tiny_model.generate(
        input_ids=batch,
        attention_mask=mask,
        pixel_values_videos=clips,
        max_new_tokens=6,
        do_sample=False,
        min_new_tokens=6,
        pad_token_id=pad,
    )
    assert out[:, width:].tolist() == singles


def test_beam_search_with_several_return_sequences(tiny_model):
    out = tiny_model.generate(
        input_ids=video_prompt(),
        pixel_values_videos=random_clips(),
        max_new_tokens=3,
        num_beams=3,
        num_return_sequences=2,
        do_sample=False,
    )
    assert out.shape[0] == 2


def test_precomputed_video_features_reused_across_turns(tiny_model):
    input_ids, clips = video_prompt(), random_clips()
    features = tiny_model.model.get_video_features(clips)
    a = tiny_model.generate(
        input_ids=input_ids, mm_encoder_outputs={"video": features}, max_new_tokens=4, do_sample=False
    )
    b = tiny_model.generate(input_ids=input_ids, pixel_values_videos=clips, max_new_tokens=4, do_sample=False)
    assert a.tolist() == b.tolist()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_forward_is_finite(tiny_model, dtype):
    model = tiny_model.to(dtype)
    with torch.no_grad():
        logits = model(input_ids=video_prompt(), pixel_values_videos=random_clips().to(dtype)).logits
    assert logits.dtype == dtype
    assert torch.isfinite(logits).all()


# ----------------------------------------------------------------------------------------------- save / load
def test_missing_checkpoint_keys_are_initialised_finitely(tmp_path, tiny_model):
    from safetensors.torch import load_file, save_file

    tiny_model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    custom = [
        "model.query_tokens",
        "model.extra_query_tokens",
        "model.vision_model.embeddings.cls_token",
        "model.vision_model.embeddings.position_embeddings",
        "model.vision_model.embeddings.image_position_embeddings",
        "model.vision_model.layers.0.lambda_1",
    ]
    for key in custom:
        del state[key]
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="missing tensors.*model.query_tokens"):  # strict by default
        VideoChatForConditionalGeneration.from_pretrained(tmp_path)
    model, info = VideoChatForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True, strict=False)
    assert sorted(info["missing_keys"]) == sorted(custom)
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        assert torch.isfinite(tensor.float()).all(), name
        assert tensor.float().abs().max() < 1e3, name
    torch.testing.assert_close(model.model.vision_model.layers[0].lambda_1, torch.full((32,), 1e-5))


def test_save_pretrained_writes_our_names(tmp_path, tiny_model):
    from safetensors import safe_open

    tiny_model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
    assert keys == set(tiny_model.state_dict())
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "videochat"


def test_auto_classes_in_a_fresh_process_give_identical_logits(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    input_ids, clips = video_prompt(), random_clips()
    torch.save({"input_ids": input_ids, "clips": clips}, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = tiny_model(input_ids=input_ids, pixel_values_videos=clips).logits
    script = textwrap.dedent(f"""
        import torch, videochat
        from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText
        assert type(AutoConfig.from_pretrained({str(tmp_path)!r})).__name__ == "VideoChatConfig"
        assert type(AutoModel.from_pretrained({str(tmp_path)!r})).__name__ == "VideoChatModel"
        model = AutoModelForImageTextToText.from_pretrained({str(tmp_path)!r}).eval()
        inputs = torch.load({str(tmp_path / "inputs.pt")!r})
        with torch.no_grad():
            logits = model(input_ids=inputs["input_ids"], pixel_values_videos=inputs["clips"]).logits
        torch.save(logits, {str(tmp_path / "logits.pt")!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    assert torch.equal(torch.load(tmp_path / "logits.pt"), expected)


def test_base_model_loads_from_a_generation_checkpoint(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    base, info = VideoChatModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"]
    torch.testing.assert_close(base.query_tokens, tiny_model.model.query_tokens)


def test_no_split_modules_name_real_blocks(tiny_model):
    names = {type(module).__name__ for module in tiny_model.modules()}
    assert {"InternVLVisionLayer", "Blip2QFormerLayer"} <= names
    assert {"InternVLVisionLayer", "Blip2QFormerLayer"} <= set(tiny_model._no_split_modules)


def test_positions_warning_for_long_prompts_but_not_for_flattened_serving_rows(tiny_model, caplog):
    """A prompt past `max_position_embeddings` (512 here) is warned about; a call with `use_cache=False` and no cache
    (vLLM runs the model on all its requests' tokens flattened into one row) is not."""
    embeds = torch.zeros(1, 600, 32)
    with caplog.at_level("WARNING"), torch.no_grad():
        tiny_model(inputs_embeds=embeds[:, :599], use_cache=False)
        assert "max_position_embeddings (512)" not in caplog.text
        tiny_model(inputs_embeds=embeds)
    assert "The sequence (600 positions" in caplog.text
