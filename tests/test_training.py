# Copyright 2026 The videochat authors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning surface: answer-only labels, the batching collator, PEFT LoRA with `Trainer`, gradient checkpointing."""

import shutil

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny converted InternVideo2-Chat-8B-HD folder (random weights) and three H.264 clips of different shapes."""
    from videochat.cli.demo import write_demo_video, write_original_checkpoint
    from videochat.convert.converter import convert

    root = tmp_path_factory.mktemp("training")
    original = write_original_checkpoint(root / "original", seed=0)
    convert(original, root / "converted", preset="internvideo2-chat-8b-hd", progress=False)
    videos = {
        name: write_demo_video(root / f"{name}.mp4", num_frames=12, width=w, height=h)
        for name, (w, h) in {"wide": (320, 96), "square": (128, 128)}.items()
    }
    yield root / "converted", videos
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def model_and_processor(tiny_checkpoint):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import videochat  # noqa: F401

    folder, _ = tiny_checkpoint
    return AutoModelForImageTextToText.from_pretrained(folder), AutoProcessor.from_pretrained(folder)


def conversation(video, answers=("a red square moves", "the camera stays still"), system=None):
    messages = [{"role": "system", "content": system}] if system else []
    messages += [
        {
            "role": "user",
            "content": [{"type": "video", "video": str(video)}, {"type": "text", "text": "describe the video."}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": answers[0]}]},
    ]
    if len(answers) > 1:
        messages += [{"role": "user", "content": "what is happening?"}, {"role": "assistant", "content": answers[1]}]
    return messages


def supervised_text(processor, example) -> str:
    ids = example["input_ids"][example["labels"] != -100]
    return "".join(processor.tokenizer.decode(ids).split())


def preset_processor(processor, preset):
    from videochat.convert.presets import build_processor

    return build_processor(preset, processor.tokenizer, processor.qformer_tokenizer)


def test_labels_cover_only_the_answers_and_their_end_of_turn(model_and_processor, tiny_checkpoint):
    from videochat.training import build_training_example

    _, processor = model_and_processor
    _, videos = tiny_checkpoint
    example = build_training_example(
        processor,
        conversation(videos["wide"], system="You are a helpful video assistant."),
        processor_kwargs={"num_frames": 4},
    )
    # InternVideo2-Chat closes an assistant turn with </s>: supervised = both answers, each with its </s>.
    assert supervised_text(processor, example) == "aredsquaremoves</s>thecamerastaysstill</s>"
    supervised = example["labels"] != -100
    assert torch.equal(example["labels"][supervised], example["input_ids"][supervised])
    assert not supervised[example["input_ids"] == processor.video_token_id].any()  # no visual position
    assert example["pixel_values_videos"].shape == (3, 4, 3, 224, 224)
    assert example["labels"][0] == -100  # BOS / system never supervised


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        # Vicuna format: answer + the "###" that closes the turn (it_dataset.py), no EOS.
        ("videochat2-vicuna-7b", "Assistant:aredsquaremoves###Assistant:thecamerastaysstill###"),
        # Mistral format: " answer </s>" (it_dataset_mistral.py).
        ("videochat2-mistral-7b", "aredsquaremoves</s>thecamerastaysstill</s>"),
    ],
)
def test_labels_follow_each_template_family(model_and_processor, tiny_checkpoint, preset, expected):
    from videochat.training import build_training_example

    _, processor = model_and_processor
    _, videos = tiny_checkpoint
    example = build_training_example(
        preset_processor(processor, preset), conversation(videos["wide"]), processor_kwargs={"num_frames": 4}
    )
    text = supervised_text(processor, example)
    if preset == "videochat2-vicuna-7b":
        # the role header "Assistant:" is never supervised
        assert text == expected.replace("Assistant:", "")
    else:
        assert text == expected


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("internvideo2-chat-8b-hd", "aredsquaremoves</s>thecamerastaysstill</s>"),
        ("videochat2-mistral-7b", "aredsquaremovesthecamerastaysstill"),
        ("videochat2-vicuna-7b", "aredsquaremoves###thecamerastaysstill###"),
        ("videochat2-phi3-mini", "aredsquaremovesthecamerastaysstill"),
    ],
)
def test_assistant_tokens_mask_marks_the_answers(model_and_processor, tiny_checkpoint, preset, expected):
    """`apply_chat_template(return_assistant_tokens_mask=True)`: the templates' `{% generation %}` blocks mark the
    answers and the text the template renders to close their turns, nothing else (video placeholders expanded)."""
    _, processor = model_and_processor
    _, videos = tiny_checkpoint
    inputs = preset_processor(processor, preset).apply_chat_template(
        conversation(videos["wide"]),
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        return_assistant_tokens_mask=True,
        processor_kwargs={"num_frames": 4},
    )
    masked = inputs["input_ids"][0][inputs["assistant_masks"][0].bool()]
    assert "".join(processor.tokenizer.decode(masked).split()) == expected


@pytest.mark.parametrize("preset", ["internvideo2-chat-8b-hd", "videochat2-vicuna-7b"])
def test_assistant_tokens_mask_equals_the_training_labels(model_and_processor, tiny_checkpoint, preset):
    """With the answers' appended ends, the mask marks exactly the tokens `build_training_example` supervises."""
    from videochat.training import build_training_example, render_with_answer_spans

    _, processor = model_and_processor
    _, videos = tiny_checkpoint
    processor = preset_processor(processor, preset)
    messages = conversation(videos["wide"])
    example = build_training_example(processor, messages, processor_kwargs={"num_frames": 4})
    _, _, with_answer_ends = render_with_answer_spans(processor, messages)
    inputs = processor.apply_chat_template(
        with_answer_ends,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        return_assistant_tokens_mask=True,
        processor_kwargs={"num_frames": 4},
    )
    assert torch.equal(inputs["input_ids"][0], example["input_ids"])
    assert inputs["assistant_masks"][0].bool().tolist() == (example["labels"] != -100).tolist()


def test_conversation_without_answer_is_rejected(model_and_processor, tiny_checkpoint):
    from videochat.training import build_training_example

    _, processor = model_and_processor
    _, videos = tiny_checkpoint
    with pytest.raises(ValueError, match="assistant"):
        build_training_example(processor, conversation(videos["wide"])[:1])


def test_collator_batches_different_tile_grids_and_lengths(model_and_processor, tiny_checkpoint):
    from videochat.training import VideoChatDataCollator, build_training_example

    model, processor = model_and_processor
    _, videos = tiny_checkpoint
    hd = preset_processor(processor, "videochat2-hd-mistral-7b")  # grid follows the aspect ratio (no fix_ratio)
    kwargs = {"num_frames": 4}
    wide = build_training_example(hd, conversation(videos["wide"]), processor_kwargs=kwargs)
    square = build_training_example(hd, conversation(videos["square"], answers=("a square",)), processor_kwargs=kwargs)
    assert wide["pixel_values_videos"].shape[0] != square["pixel_values_videos"].shape[0]

    for side in ("right", "left"):
        batch = VideoChatDataCollator(hd, padding_side=side)([wide, square])
        lengths = [len(wide["input_ids"]), len(square["input_ids"])]
        assert batch["input_ids"].shape == (2, max(lengths))
        assert (
            batch["pixel_values_videos"].shape[0]
            == wide["pixel_values_videos"].shape[0] + square["pixel_values_videos"].shape[0]
        )
        assert batch["video_qformer_input_ids"].shape[0] == batch["pixel_values_videos"].shape[0]
        assert batch["video_grid_thw"][:, 0].sum() == batch["pixel_values_videos"].shape[0]
        short = 1
        pad = max(lengths) - lengths[short]
        padded = slice(0, pad) if side == "left" else slice(lengths[short], None)
        assert (batch["attention_mask"][short, padded] == 0).all()
        assert (batch["labels"][short, padded] == -100).all()
        assert (batch["input_ids"][short, padded] != processor.video_token_id).all()

        # the batched loss-bearing logits equal the per-example ones
        with torch.no_grad():
            batched = model(**batch).logits
            for row, example in enumerate((wide, square)):
                single = model(**VideoChatDataCollator(hd, padding_side=side)([example])).logits[0]
                real = batch["attention_mask"][row].bool()
                torch.testing.assert_close(batched[row][real], single, rtol=1e-4, atol=1e-4)


def test_collator_rejects_different_frame_counts(model_and_processor, tiny_checkpoint):
    from videochat.training import VideoChatDataCollator, build_training_example

    _, processor = model_and_processor
    _, videos = tiny_checkpoint
    four = build_training_example(processor, conversation(videos["wide"]), processor_kwargs={"num_frames": 4})
    two = build_training_example(processor, conversation(videos["wide"]), processor_kwargs={"num_frames": 2})
    with pytest.raises(ValueError, match="number of frames"):
        VideoChatDataCollator(processor)([four, two])


def _lora_model(folder):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)",
    )
    return get_peft_model(model, config)


def test_lora_steps_with_trainer_reduce_the_loss(tiny_checkpoint, model_and_processor, tmp_path):
    from transformers import Trainer, TrainingArguments

    from videochat.training import VideoChatDataCollator

    folder, videos = tiny_checkpoint
    _, processor = model_and_processor
    model = _lora_model(folder)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    collator = VideoChatDataCollator(processor, processor_kwargs={"num_frames": 2})
    raw = [
        {"messages": conversation(videos["wide"])},
        {"messages": conversation(videos["square"], answers=("a square",))},
    ]
    dataset = [collator._as_example(feature) for feature in raw]  # decode the videos once
    batch = collator(raw)  # raw conversations collate to the same batch
    torch.testing.assert_close(collator(dataset), batch)

    def loss_now():
        model.eval()
        with torch.no_grad():
            return model(**batch).loss.item()

    before = loss_now()
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=6,
        per_device_train_batch_size=2,
        learning_rate=5e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        use_cpu=True,
        seed=0,
        lr_scheduler_type="constant",
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    result = trainer.train()
    after = loss_now()
    assert result.global_step == 6
    assert after < 0.8 * before, (before, after)
    base = [name for name, parameter in model.named_parameters() if "lora_" not in name and parameter.grad is not None]
    assert base == []  # frozen weights got no gradient


def test_gradient_checkpointing_gives_the_same_loss_and_lora_gradients(tiny_checkpoint, model_and_processor):
    from videochat.training import VideoChatDataCollator

    folder, videos = tiny_checkpoint
    _, processor = model_and_processor
    batch = VideoChatDataCollator(processor, processor_kwargs={"num_frames": 2})(
        [{"messages": conversation(videos["wide"])}]
    )
    results = []
    for checkpointing in (False, True):
        model = _lora_model(folder)
        model.train()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            assert model.base_model.model.model.language_model.gradient_checkpointing
        loss = model(**batch).loss
        loss.backward()
        grads = {
            name: parameter.grad.clone() for name, parameter in model.named_parameters() if parameter.grad is not None
        }
        results.append((loss.detach(), grads))
    (loss_plain, grads_plain), (loss_ckpt, grads_ckpt) = results
    torch.testing.assert_close(loss_ckpt, loss_plain)
    assert grads_plain.keys() == grads_ckpt.keys() and len(grads_plain) > 0
    for name in grads_plain:
        torch.testing.assert_close(grads_ckpt[name], grads_plain[name], rtol=1e-4, atol=1e-6)
