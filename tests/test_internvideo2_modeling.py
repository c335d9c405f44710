# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""InternVideo2 foundation models on tiny random configs: configs, shapes, the spec's re-implementation traps,
input errors, similarity scaling, matching, save/reload, initialisation, dtypes."""

import math

import pytest
import torch
import torch.nn.functional as F
from internvideo2_testing import random_clips, random_text, tiny_video_text_config, tiny_vision_config
from safetensors.torch import load_file, save_file

from videochat import (
    InternVideo2Config,
    InternVideo2ForVideoClassification,
    InternVideo2Model,
    InternVideo2TextConfig,
    InternVideo2VideoTextModel,
    InternVideo2VisionConfig,
    VideoChatInternVideo2VisionConfig,
)
from videochat.modeling_videochat_vision import VideoChatInternVideo2VisionModel as ChatTower


@pytest.fixture
def video_text_model():
    torch.manual_seed(0)
    return InternVideo2VideoTextModel(tiny_video_text_config()).eval()


# ---------------------------------------------------------------------------------------------------- configs


def test_default_configs_are_the_released_1b_models():
    stage1 = InternVideo2VisionConfig()
    assert (stage1.hidden_size, stage1.num_hidden_layers, stage1.intermediate_size, stage1.num_frames) == (
        1408,
        40,
        6144,
        8,
    )
    assert not stage1.use_image_position_embeddings and stage1.pooling_num_attention_heads == 16
    stage2 = InternVideo2Config()
    assert stage2.vision_config.num_frames == 4 and stage2.vision_config.use_image_position_embeddings
    text = stage2.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.fusion_layer, text.encoder_hidden_size) == (
        1024,
        24,
        19,
        1408,
    )
    assert stage2.projection_dim == 512 and stage2.temperature_init_value == 0.07


def test_config_round_trip_keeps_sub_config_types(tmp_path):
    config = tiny_video_text_config()
    config.save_pretrained(tmp_path)
    reloaded = InternVideo2Config.from_pretrained(tmp_path)
    assert isinstance(reloaded.vision_config, InternVideo2VisionConfig)
    assert isinstance(reloaded.text_config, InternVideo2TextConfig)
    assert reloaded.to_dict()["vision_config"] == config.to_dict()["vision_config"]
    assert reloaded.text_config.fusion_layer == 2


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: tiny_vision_config(pooling_num_attention_heads=5), "pooling_num_attention_heads"),
        (lambda: InternVideo2TextConfig(num_hidden_layers=4, fusion_layer=5), "fusion_layer"),
        (lambda: InternVideo2Config(text_config={"encoder_hidden_size": 96}), "encoder_hidden_size"),
        (lambda: InternVideo2Config(temperature_min=0.6, temperature_max=0.5), "temperature_min"),
    ],
)
def test_inconsistent_configs_are_rejected(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_chat_tower_without_image_table_has_no_image_parameter():
    with_table = ChatTower(
        VideoChatInternVideo2VisionConfig(
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=28,
            num_frames=4,
        )
    )
    without = ChatTower(
        VideoChatInternVideo2VisionConfig(
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=28,
            num_frames=4,
            use_image_position_embeddings=False,
        )
    )
    assert "embeddings.image_position_embeddings" in with_table.state_dict()
    assert "embeddings.image_position_embeddings" not in without.state_dict()
    table = without.embeddings.position_table(1)  # a 1-frame input falls back to the resampled video table
    assert table.shape == (1, 1 + 4, 32) and torch.isfinite(table).all()


# ---------------------------------------------------------------------------------------------------- vision


def test_features_and_classifier_shapes_and_loss():
    torch.manual_seed(0)
    config = tiny_vision_config()
    model = InternVideo2ForVideoClassification(config).eval()
    outputs = model(random_clips(), labels=torch.tensor([1, 3]), output_hidden_states=True)
    assert outputs.logits.shape == (2, 5)
    assert outputs.loss is not None and torch.isfinite(outputs.loss)
    assert len(outputs.hidden_states) == config.num_hidden_layers + 1
    features = model.internvideo2(random_clips())
    assert features.last_hidden_state.shape == (2, 1 + 4 * 4, 32) and features.pooler_output.shape == (2, 24)


def test_attention_pooling_is_the_spec_mean_query_with_three_layernorms():
    """Re-state spec section 3 by hand: query = LayerNorm_q(mean of ALL tokens), separate LayerNorms for keys and
    values, biased projections, pool heads, softmax over all tokens, output projection."""
    torch.manual_seed(0)
    config = tiny_vision_config()
    pooler = InternVideo2Model(config).eval().pooler
    for module in (pooler.query_layernorm, pooler.key_layernorm, pooler.value_layernorm):
        torch.nn.init.normal_(module.weight, 1.0, 0.3)
        torch.nn.init.normal_(module.bias, 0.0, 0.3)
    tokens = torch.randn(2, 9, 32)
    heads, head_dim = config.pooling_num_attention_heads, 32 // config.pooling_num_attention_heads
    query = (
        pooler.q_proj(pooler.query_layernorm(tokens.mean(1, keepdim=True))).view(2, 1, heads, head_dim).transpose(1, 2)
    )
    key = pooler.k_proj(pooler.key_layernorm(tokens)).view(2, 9, heads, head_dim).transpose(1, 2)
    value = pooler.v_proj(pooler.value_layernorm(tokens)).view(2, 9, heads, head_dim).transpose(1, 2)
    weights = ((query * head_dim**-0.5) @ key.transpose(-1, -2)).softmax(-1)
    expected = pooler.out_proj((weights @ value).transpose(1, 2).reshape(2, 32))
    with torch.no_grad():
        assert torch.allclose(pooler(tokens), expected, atol=1e-6)
        # the class token takes part: changing it changes the pooled vector
        changed = tokens.clone()
        changed[:, 0] += torch.randn(32)
        assert not torch.allclose(pooler(changed), pooler(tokens), atol=1e-4)


def test_all_blocks_are_used_and_there_is_no_final_norm():
    torch.manual_seed(0)
    model = InternVideo2Model(tiny_vision_config()).eval()
    with torch.no_grad():
        outputs = model(random_clips(), output_hidden_states=True)
    assert torch.equal(outputs.last_hidden_state, outputs.hidden_states[-1])


def test_wrong_frame_count_needs_interpolate_pos_encoding():
    torch.manual_seed(0)
    model = InternVideo2ForVideoClassification(tiny_vision_config()).eval()
    with pytest.raises(ValueError, match="interpolate_pos_encoding=True"):
        model(random_clips(frames=8))
    with pytest.raises(ValueError, match="for 4 frames, got 1"):
        model(random_clips(frames=1))
    with torch.no_grad():
        resampled = model(random_clips(frames=8), interpolate_pos_encoding=True)
    assert resampled.logits.shape == (2, 5)


def test_channels_first_layout_is_rejected_with_the_expected_layout_named():
    model = InternVideo2Model(tiny_vision_config()).eval()
    with pytest.raises(ValueError, match=r"\(batch, frames, channels, height, width\)"):
        model(random_clips().transpose(1, 2))  # the stage-1 original layout (batch, channels, frames, H, W)
    with pytest.raises(ValueError, match="rank|frames, channels"):
        model(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="expected 28x28 frames, got 56x56"):
        model(random_clips(size=56))


def test_one_frame_uses_the_image_position_table(video_text_model):
    embeddings = video_text_model.vision_model.encoder.embeddings
    image = random_clips(batch=1, frames=1)
    with torch.no_grad():
        hidden = video_text_model.vision_model(image, output_hidden_states=True).hidden_states[0]
        patches = embeddings.patch_embeddings(image.transpose(1, 2))
        expected = torch.cat([embeddings.cls_token, patches], 1) + embeddings.image_position_embeddings
    assert torch.allclose(hidden, expected)
    features = video_text_model.get_image_features(image[:, 0])
    assert features.pooler_output.shape == (1, 16)


# ---------------------------------------------------------------------------------------------------- text


def test_text_features_use_only_the_layers_before_fusion_layer(video_text_model):
    input_ids, attention_mask = random_text()
    videos = random_clips()
    with torch.no_grad():
        before = video_text_model(input_ids, videos, attention_mask, output_matching_logits=True)
        video_text_model.text_model.encoder.layer[2].output.dense.weight.add_(torch.randn(32, 64))  # a fusion layer
        after = video_text_model(input_ids, videos, attention_mask, output_matching_logits=True)
    assert torch.equal(before.text_embeds, after.text_embeds)
    assert not torch.allclose(before.matching_logits, after.matching_logits)


def test_fusion_layers_cross_attend_with_vision_width_keys_and_values():
    torch.manual_seed(0)
    vision = tiny_vision_config(
        hidden_size=40, num_attention_heads=4, pooling_num_attention_heads=4, use_image_position_embeddings=True
    ).to_dict()
    config = InternVideo2Config(
        vision_config=vision,
        projection_dim=16,
        text_config={
            "vocab_size": 60,
            "hidden_size": 32,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "max_position_embeddings": 48,
            "fusion_layer": 1,
            "encoder_hidden_size": 40,
        },
    )
    model = InternVideo2VideoTextModel(config).eval()
    layers = model.text_model.encoder.layer
    assert not hasattr(layers[0], "crossattention")
    for layer in layers[1:]:
        assert layer.crossattention.self.key.in_features == 40 and layer.crossattention.self.value.in_features == 40
        assert layer.crossattention.self.query.in_features == 32
    input_ids, attention_mask = random_text()
    with torch.no_grad():
        outputs = model(input_ids, random_clips(), attention_mask, output_matching_logits=True)
    assert outputs.matching_logits.shape == (2, 3, 2)


def test_padding_does_not_change_the_text_feature(video_text_model):
    input_ids, _ = random_text(batch=1, length=8)
    padded = torch.cat([input_ids, torch.zeros(1, 12, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 8, dtype=torch.long), torch.zeros(1, 12, dtype=torch.long)], dim=1)
    with torch.no_grad():
        short = video_text_model.get_text_features(input_ids, torch.ones_like(input_ids)).pooler_output
        long = video_text_model.get_text_features(padded, mask).pooler_output
    assert torch.allclose(short, long, atol=1e-5)


def test_text_longer_than_the_position_table_is_a_clear_error(video_text_model):
    with pytest.raises(ValueError, match="48 positions"):
        video_text_model.get_text_features(torch.ones(1, 49, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------- scores


def test_logits_use_the_clamped_learned_temperature_or_a_fixed_scale(video_text_model):
    input_ids, attention_mask = random_text()
    videos = random_clips()
    with torch.no_grad():
        learned = video_text_model(input_ids, videos, attention_mask)
        cosine = learned.video_embeds @ learned.text_embeds.T
        assert torch.allclose(learned.logits_per_video, cosine / 0.07, atol=1e-5)
        assert torch.equal(learned.logits_per_text, learned.logits_per_video.T)
        assert torch.allclose(learned.video_embeds.norm(dim=-1), torch.ones(2))
        fixed = video_text_model(input_ids, videos, attention_mask, logit_scale=100.0)
        assert torch.allclose(fixed.logits_per_video, 100.0 * cosine, atol=1e-4)
        video_text_model.temperature.fill_(1e-5)  # below the clamp: the original clamps temp to [0.001, 0.5]
        clamped = video_text_model(input_ids, videos, attention_mask)
        assert torch.allclose(clamped.logits_per_video, cosine / 0.001, atol=1e-2)
        video_text_model.temperature.fill_(3.0)
        assert math.isclose(video_text_model.logit_scale.item(), 2.0)


def test_all_pairs_matching_equals_aligned_pairs(video_text_model):
    input_ids, attention_mask = random_text()
    videos = random_clips()
    with torch.no_grad():
        outputs = video_text_model(input_ids, videos, attention_mask, output_matching_logits=True)
        video_states = outputs.video_model_output.last_hidden_state
        text_states = outputs.text_model_output.last_hidden_state
        for video in range(2):
            for text in range(3):
                aligned = video_text_model.get_matching_logits(
                    video_states[video : video + 1], text_states[text : text + 1], attention_mask[text : text + 1]
                )
                assert torch.allclose(outputs.matching_logits[video, text], aligned[0], atol=1e-5)
    with pytest.raises(ValueError, match="row i"):
        video_text_model.get_matching_logits(video_states, text_states, attention_mask)


# ---------------------------------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("kind", ["classifier", "video_text"])
def test_save_and_reload_give_identical_outputs(kind, tmp_path):
    from transformers import AutoModel, AutoModelForVideoClassification

    torch.manual_seed(0)
    if kind == "classifier":
        model = InternVideo2ForVideoClassification(tiny_vision_config()).eval()
        model.save_pretrained(tmp_path)
        reloaded = AutoModelForVideoClassification.from_pretrained(tmp_path).eval()
        with torch.no_grad():
            assert torch.equal(model(random_clips()).logits, reloaded(random_clips()).logits)
        assert type(AutoModel.from_pretrained(tmp_path)) is InternVideo2Model
        return
    model = InternVideo2VideoTextModel(tiny_video_text_config()).eval()
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is InternVideo2VideoTextModel
    input_ids, attention_mask = random_text()
    with torch.no_grad():
        first = model(input_ids, random_clips(), attention_mask, output_matching_logits=True)
        second = reloaded(input_ids, random_clips(), attention_mask, output_matching_logits=True)
    for name in ("logits_per_video", "video_embeds", "text_embeds", "matching_logits"):
        assert torch.equal(first[name], second[name]), name


def test_missing_custom_parameters_get_their_initial_values(tmp_path):
    torch.manual_seed(0)
    InternVideo2VideoTextModel(tiny_video_text_config()).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    removed = [
        "temperature",
        "vision_model.encoder.embeddings.position_embeddings",
        "vision_model.encoder.embeddings.image_position_embeddings",
        "vision_model.encoder.embeddings.cls_token",
        "vision_model.encoder.layers.0.lambda_1",
        "vision_model.pooler.q_proj.bias",
    ]
    save_file(
        {key: value for key, value in weights.items() if key not in removed},
        tmp_path / "model.safetensors",
        metadata={"format": "pt"},
    )
    with pytest.raises(ValueError, match="missing tensors.*temperature"):  # strict by default
        InternVideo2VideoTextModel.from_pretrained(tmp_path)
    model = InternVideo2VideoTextModel.from_pretrained(tmp_path, strict=False)
    assert model.temperature.item() == pytest.approx(0.07)
    assert torch.equal(model.vision_model.encoder.layers[0].lambda_1, torch.full((32,), 1e-5))
    for name, parameter in model.named_parameters():
        assert torch.isfinite(parameter).all(), name
    embeddings = model.vision_model.encoder.embeddings
    assert embeddings.position_embeddings.abs().max() < 1.0 and embeddings.position_embeddings.abs().sum() > 0
    assert torch.equal(model.text_model.embeddings.position_ids[0], torch.arange(48))


def test_eager_and_sdpa_attention_agree():
    torch.manual_seed(0)
    config = tiny_video_text_config()
    eager = InternVideo2VideoTextModel._from_config(config, attn_implementation="eager").eval()
    sdpa = InternVideo2VideoTextModel._from_config(config, attn_implementation="sdpa").eval()
    sdpa.load_state_dict(eager.state_dict())
    input_ids, attention_mask = random_text()
    with torch.no_grad():
        first = eager(input_ids, random_clips(), attention_mask, output_matching_logits=True)
        second = sdpa(input_ids, random_clips(), attention_mask, output_matching_logits=True)
    assert torch.allclose(first.logits_per_video, second.logits_per_video, atol=1e-4)
    assert torch.allclose(first.matching_logits, second.matching_logits, atol=1e-5)


def test_bfloat16_forward_is_finite(video_text_model):
    model = video_text_model.to(torch.bfloat16)
    input_ids, attention_mask = random_text()
    with torch.no_grad():
        outputs = model(input_ids, random_clips().to(torch.bfloat16), attention_mask, output_matching_logits=True)
    for name in ("logits_per_video", "video_embeds", "text_embeds", "matching_logits"):
        assert outputs[name].dtype == torch.bfloat16 and torch.isfinite(outputs[name]).all(), name


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = InternVideo2VideoTextModel(tiny_video_text_config()).train()
    input_ids, attention_mask = random_text()
    outputs = model(input_ids, random_clips(), attention_mask, output_matching_logits=True)
    loss = F.cross_entropy(outputs.logits_per_video, torch.tensor([0, 1])) + outputs.matching_logits.sum()
    loss.backward()
    without = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    # position tables that a clip of the table's own length does not read: the image table (video input)
    assert without == ["vision_model.encoder.embeddings.image_position_embeddings"]
