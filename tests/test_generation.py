"""Generative transfer on a tiny random Llama: data layouts, prompt masking, packing, training, save/load, CLI."""

from __future__ import annotations

import json

import pytest
import torch

import transferkit as tk
from transferkit.errors import ConfigError, DataError
from transferkit.generation.pairs import load_pairs, load_prompts
from transferkit.generation.tokens import IGNORE, encode_conversation, pack, packed_batch, padded_batch

# Fast settings: high learning rates, no held-out split unless a test asks for one.
TINY_LM = dict(task="generation", backbone="tiny-llama", batch_size=8, lora_lr=2e-2, lr=5e-3, val_fraction=0.0)
PAIRS = [(f"copy: {w}", w) for w in ["cat", "dog", "sun", "sky", "red", "big", "hot", "cup"] * 4]


@pytest.fixture(scope="module")
def tiny_lm():
    from transferkit.generation.models import load_causal_lm
    from transferkit.generation.testing import tiny_llama_dir

    return load_causal_lm(tiny_llama_dir())


def _chat(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


# --- data layouts ---


def test_pairs_from_prompt_response_alpaca_and_messages(tmp_path):
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"question": "2+2?", "answer": "4"}\n{"question": "3+3?", "answer": "6"}\n')
    assert load_pairs(plain).conversations[0] == _chat("2+2?", "4")

    alpaca = tmp_path / "alpaca.jsonl"
    rows = [
        {"instruction": "Translate", "input": "chat", "output": "cat"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
    ]
    alpaca.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = load_pairs(alpaca)
    assert pairs.prompts()[0][-1]["content"] == "Translate\n\nchat" and pairs.prompts()[1][-1]["content"] == "Say hi"
    assert pairs.references() == ["cat", "hi"]
    assert load_prompts(alpaca) == ["Translate\n\nchat", "Say hi"]

    chats = tmp_path / "chat.jsonl"
    turns = [
        {"from": "human", "value": "hi"},
        {"from": "gpt", "value": "hello"},
        {"from": "human", "value": "bye"},
        {"from": "gpt", "value": "see you"},
    ]
    chats.write_text(json.dumps({"conversations": turns}) + "\n")
    pairs = load_pairs(chats, system_prompt="Be brief.")
    assert pairs.conversations[0][0] == {"role": "system", "content": "Be brief."}
    assert pairs.references() == ["see you"] and pairs.prompts()[0][-1] == {"role": "user", "content": "bye"}


def test_custom_columns_and_bad_data(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("src,tgt\nhello,bonjour\ncat,chat\n")
    with pytest.raises(DataError, match="--prompt-column"):
        load_pairs(path)
    assert load_pairs(path, prompt_column="src", response_column="tgt").references() == ["bonjour", "chat"]
    with pytest.raises(DataError, match="'nope'.*not found"):
        load_pairs(path, prompt_column="nope", response_column="tgt")
    path.write_text("prompt,response\nhello,\n")
    with pytest.raises(DataError, match="row 1"):
        load_pairs(path)
    with pytest.raises(DataError, match="no assistant turn"):
        load_pairs([{"messages": [{"role": "user", "content": "hi"}]}])


# --- tokens: masking, truncation, packing ---


def test_only_answer_tokens_carry_loss(tiny_lm):
    _, tokenizer = tiny_lm
    encoded = encode_conversation(tokenizer, _chat("What is red?", "A colour."), 512)
    trained = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE]
    shown = [t for t, label in zip(encoded.input_ids, encoded.labels) if label == IGNORE]
    assert tokenizer.decode(trained) == "A colour.<|im_end|>\n"
    assert tokenizer.decode(shown) == "<|im_start|>user\nWhat is red?<|im_end|>\n<|im_start|>assistant\n"
    assert [label for label in encoded.labels if label != IGNORE] == trained  # labels are the tokens themselves


def test_multi_turn_trains_every_assistant_turn(tiny_lm):
    _, tokenizer = tiny_lm
    turns = _chat("hi", "hello") + _chat("bye", "ciao")
    encoded = encode_conversation(tokenizer, turns, 512)
    trained = tokenizer.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE])
    assert trained == "hello<|im_end|>\nciao<|im_end|>\n"


def test_plain_layout_without_a_chat_template(tmp_path):
    from transferkit.generation.testing import byte_tokenizer

    tokenizer = byte_tokenizer(chat_template=None)
    encoded = encode_conversation(tokenizer, _chat("Sum 1 2", "3"), 512)
    text = tokenizer.decode(encoded.input_ids)
    assert text == "### Instruction:\nSum 1 2\n\n### Response:\n3<|im_end|>"
    assert (
        tokenizer.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE]) == "3<|im_end|>"
    )


def test_truncation_is_counted_and_answerless_examples_dropped(tiny_lm):
    from transferkit.generation.train import encode_pairs

    _, tokenizer = tiny_lm
    pairs = load_pairs([("short", "ok"), ("x" * 40, "long answer " * 5), ("y" * 80, "never seen")])
    encoded, stats = encode_pairs(pairs, tokenizer, max_length=64)
    assert stats["examples"] == 3 and stats["truncated"] == 2 and stats["dropped_no_answer_left"] == 1
    assert len(encoded) == 2 and all(len(e) <= 64 for e in encoded)


def test_packed_rows_equal_separate_examples(tiny_lm):
    """Position ids restart per example, so packed attention never crosses examples: same loss and logits."""
    model, tokenizer = tiny_lm
    encoded = [encode_conversation(tokenizer, _chat(p, r), 512) for p, r in [("hello there", "hi!"), ("2+2?", "four")]]
    bins = pack(encoded, 512)
    assert len(bins) == 1
    packed = packed_batch(bins, tokenizer.pad_token_id)
    with torch.no_grad():
        joint = model(**packed, use_cache=False).loss
        separate = [model(**padded_batch([e], tokenizer.pad_token_id), use_cache=False).loss for e in bins[0]]
    counts = [sum(label != IGNORE for label in e.labels[1:]) for e in bins[0]]
    expected = sum(loss * n for loss, n in zip(separate, counts)) / sum(counts)
    assert torch.allclose(joint, expected, atol=1e-5)
    assert pack(encoded, max(map(len, encoded))) == [[e] for e in sorted(encoded, key=len, reverse=True)]


# --- training, generation, artifacts ---


def _first_and_last_loss(model) -> tuple[float, float]:
    history = model.run_info_["training"]["history"]
    return history[0]["train_loss"], history[-1]["train_loss"]


@pytest.mark.parametrize("strategy,packing", [("lora", False), ("full", True)])
def test_loss_decreases_and_the_toy_task_is_learned(strategy, packing):
    model = tk.FineTuner(**TINY_LM, strategy=strategy, packing=packing, epochs=12).fit(PAIRS, verbose=False)
    first, last = _first_and_last_loss(model)
    assert last < 0.2 * first
    assert model.generate(["copy: cat", "copy: sky"], max_new_tokens=6) == ["cat", "sky"]
    prompts = ["copy: cat", "copy: a much longer prompt than the others", "copy: sky", "x"]
    batched = model.generate(prompts, max_new_tokens=8)  # left-padded together
    assert batched == [model.generate([p], max_new_tokens=8)[0] for p in prompts]
    params = model.run_info_["parameters"]
    assert (params["trainable"] < params["total"]) == (strategy == "lora")
    assert model.run_info_["training"]["tokens_per_second"] > 0


def test_lora_run_saves_and_reloads_with_identical_greedy_output(tmp_path):
    from peft import AutoPeftModelForCausalLM

    from transferkit.generation.decode import generate_answers
    from transferkit.generation.pairs import prompts_from

    model = tk.FineTuner(**TINY_LM, epochs=3).fit(PAIRS, verbose=False)
    prompts = ["copy: cat", "copy: sky", "something else entirely"]
    before = model.generate(prompts, max_new_tokens=12)
    out = model.save(tmp_path / "run")
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    loaded = tk.load(out)
    assert type(loaded).__name__ == "GenerativeFineTuner"
    assert loaded.generate(prompts, max_new_tokens=12) == before
    plain = AutoPeftModelForCausalLM.from_pretrained(str(out)).eval()  # plain peft, no transferkit
    settings = {"max_new_tokens": 12, "do_sample": False}
    assert generate_answers(plain, loaded.tokenizer_, prompts_from(prompts), settings, 8, None, False) == before


def test_merged_and_full_runs_are_standalone_transformers_models(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for strategy, extra in (("lora", {"merge_adapters": True}), ("full", {})):
        model = tk.FineTuner(**TINY_LM, strategy=strategy, epochs=2, **extra).fit(PAIRS, verbose=False)
        before = model.generate(["copy: dog"], max_new_tokens=8)
        out = model.save(tmp_path / strategy)
        assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
        assert tk.load(out).generate(["copy: dog"], max_new_tokens=8) == before
        plain = AutoModelForCausalLM.from_pretrained(str(out))
        tokenizer = AutoTokenizer.from_pretrained(str(out))
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": "copy: dog"}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )["input_ids"]
        generated = plain.generate(ids, max_new_tokens=8, do_sample=False)
        assert tokenizer.decode(generated[0, ids.shape[1] :], skip_special_tokens=True).strip() == before[0]


def test_sampling_is_seeded_and_options_are_checked():
    base = tk.GenerativeFineTuner.from_base("tiny-llama")
    first = base.generate(["hello"], do_sample=True, temperature=0.8, seed=3, max_new_tokens=10)
    assert base.generate(["hello"], do_sample=True, temperature=0.8, seed=3, max_new_tokens=10) == first
    with pytest.raises(ConfigError, match="only when sampling"):
        base.generate(["hello"], temperature=0.5)
    with pytest.raises(ConfigError, match="lora, full"):
        tk.FineTuner(**{**TINY_LM, "strategy": "probe"}).fit(PAIRS, verbose=False)
    with pytest.raises(ConfigError, match="--head-lr, --pooling do not apply to --task generation"):
        tk.FineTuner(**TINY_LM, pooling="cls", head_lr=0.1).fit(PAIRS, verbose=False)
    with pytest.raises(ConfigError, match="predict_proba|probabilities"):
        base.predict_proba(["hello"])


def test_evaluate_reports_base_and_fine_tuned_on_the_same_prompts():
    model = tk.FineTuner(**TINY_LM, epochs=12).fit(PAIRS, verbose=False)
    report = model.evaluate(PAIRS[:8], max_new_tokens=6, log=None)
    assert report["n"] == 8 and set(report["models"]) == {"base", "fine-tuned"}
    tuned, base = report["models"]["fine-tuned"], report["models"]["base"]
    assert tuned["perplexity"] < base["perplexity"]  # the answers became likelier
    assert 0 <= tuned["exact_match_ci95"][0] <= tuned["exact_match"] <= tuned["exact_match_ci95"][1] <= 1
    assert len(tuned["predictions"]) == 8 and report["examples"][0]["reference"] == "cat"


class Interrupted(Exception):
    pass


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    from transferkit.training import checkpoint as checkpoint_module

    options = {**TINY_LM, "epochs": 3, "checkpoint_steps": 2, "lora_dropout": 0.1}  # dropout: the RNG is restored too
    reference = tk.FineTuner(**options).fit(PAIRS, verbose=False)
    original = checkpoint_module.Checkpointer.save
    saves = []

    def crashing(self, phase, state):
        original(self, phase, state)
        saves.append(phase)
        if len(saves) == 3:  # inside epoch 2
            raise Interrupted

    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", crashing)
    with pytest.raises(Interrupted):
        tk.FineTuner(**options).fit(PAIRS, verbose=False, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", original)
    saved = torch.load(tmp_path / "ckpt" / "lora.pt", weights_only=True)
    assert all("lora_" in name for name in saved["module"])  # only what trains is checkpointed, not the base
    resumed = tk.FineTuner(**options).fit(PAIRS, verbose=False, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.run_info_["training"]["resumed_from_step"] is not None
    ours, theirs = reference.model_.state_dict(), resumed.model_.state_dict()
    differ = [(k, (ours[k] - theirs[k]).abs().max().item()) for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not differ, differ[:4]


def test_cli_fit_generate_and_evaluate(tmp_path, capsys):
    from transferkit.cli import main

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in PAIRS))
    out = tmp_path / "run"
    args = ["fit", "--task", "generation", "--backbone", "tiny-llama", "--data", str(data), "--test", str(data)]
    assert main([*args, "--out", str(out), "--epochs", "2", "--lora-lr", "0.02", "--max-new-tokens", "4"]) == 0
    printed = capsys.readouterr().out
    assert "| base |" in printed and "| fine-tuned |" in printed
    manifest = json.loads((out / "transferkit.json").read_text())
    assert manifest["task"] == "generation" and set(manifest["metrics"]["pairs"]) == {"base", "fine-tuned"}
    assert main(["generate", str(out), "copy: cat", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["prompt"] == "copy: cat" and isinstance(row["response"], str)
    assert main(["generate", str(out), "copy: cat", "--temperature", "0.3"]) == 2
    assert "--sample" in capsys.readouterr().err
    assert main(["evaluate", str(out), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"]["fine-tuned"]["n"] == len(PAIRS)


def test_answer_only_logits_give_the_models_own_loss(tiny_lm):
    """The objective projects onto the vocabulary only where an answer token is predicted: same loss as the
    model's full-logits loss, padded or packed."""
    from transferkit.generation.train import CausalLMObjective

    model, tokenizer = tiny_lm
    encoded = [encode_conversation(tokenizer, _chat(p, r), 512) for p, r in [("hello there", "hi!"), ("2+2?", "four")]]
    objective = CausalLMObjective(model)
    assert objective.sliced
    for batch in (
        padded_batch(encoded, tokenizer.pad_token_id),
        packed_batch(pack(encoded, 512), tokenizer.pad_token_id),
    ):
        with torch.no_grad():
            assert torch.allclose(objective(batch), model(**batch, use_cache=False).loss, atol=1e-5)


def test_multi_turn_without_a_chat_template_trains_both_answers():
    from transferkit.generation.testing import byte_tokenizer

    tokenizer = byte_tokenizer(chat_template=None)
    encoded = encode_conversation(tokenizer, _chat("hi", "hello") + _chat("bye", "ciao"), 512)
    trained = tokenizer.decode([t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE])
    assert trained == "hello<|im_end|>ciao<|im_end|>"


def test_generation_stops_at_the_templates_end_of_turn_token():
    """A tokenizer whose EOS is <|endoftext|> but whose template ends answers with <|im_end|> (Qwen-style)."""
    from transferkit.generation.testing import byte_tokenizer
    from transferkit.generation.tokens import end_of_turn_ids

    tokenizer = byte_tokenizer()
    assert end_of_turn_ids(tokenizer) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    tokenizer.eos_token = "<|endoftext|>"
    ids = end_of_turn_ids(tokenizer)
    assert ids == [tokenizer.convert_tokens_to_ids("<|endoftext|>"), tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_column_names_in_fit_and_a_refused_save_keeps_the_adapters(tmp_path):
    import pandas as pd

    from transferkit.errors import ArtifactError
    from transferkit.generation.artifact import has_adapters

    frame = pd.DataFrame({"src": [p for p, _ in PAIRS], "tgt": [r for _, r in PAIRS]})
    model = tk.FineTuner(**TINY_LM, epochs=1, merge_adapters=True).fit(frame, text="src", label="tgt", verbose=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    with pytest.raises(ArtifactError, match="already holds"):
        model.save(tmp_path / "taken")
    assert has_adapters(model.model_)  # not merged by the refused save
    from transferkit.errors import BackboneError

    run = model.save(tmp_path / "run")
    with pytest.raises(BackboneError, match="generative run"):
        tk.FineTuner(backbone=str(run), strategy="probe").fit(["a", "b"] * 5, ["x", "y"] * 5, verbose=False)


def test_resume_on_other_frozen_weights_is_refused(tmp_path, monkeypatch):
    from transferkit.errors import ArtifactError
    from transferkit.training import checkpoint as checkpoint_module

    options = {**TINY_LM, "epochs": 2}
    original = checkpoint_module.Checkpointer.save

    def crashing(self, phase, state):
        original(self, phase, {**state, "frozen_digest": state["frozen_digest"] + 1.0})  # as if other base weights
        raise Interrupted

    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", crashing)
    with pytest.raises(Interrupted):
        tk.FineTuner(**options).fit(PAIRS, verbose=False, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", original)
    with pytest.raises(ArtifactError, match="other frozen weights"):
        tk.FineTuner(**options).fit(PAIRS, verbose=False, checkpoint_dir=tmp_path / "ckpt", resume=True)


def test_cli_generate_reads_chat_files_and_writes_csv(tmp_path):
    import pandas as pd

    from transferkit.cli import main

    chats = tmp_path / "chats.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"copy: {w}"}, {"role": "assistant", "content": w}]} for w in "ab"
    ]
    chats.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "answers.csv"
    assert main(["generate", "tiny-llama", "--data", str(chats), "--output", str(out), "--max-new-tokens", "3"]) == 0
    frame = pd.read_csv(out, keep_default_na=False)
    assert frame["prompt"].tolist() == ["copy: a", "copy: b"] and len(frame["response"]) == 2
