"""The memorisation testbed (parrotwatch/testbed.py) and its CLI (parrotwatch/cli/testbed.py): the
trained tiny model memorises members and repeated canaries; metadata, determinism, corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from parrotwatch.cli.testbed import app
from parrotwatch.testbed import (
    PRESETS,
    REPETITIONS,
    build_testbed,
    corpus_documents,
    evaluate_testbed,
    load_testbed,
)


@pytest.fixture(scope="module")
def tiny_eval(tiny_testbed, tiny_lm):
    return evaluate_testbed(tiny_testbed, n_fresh=60, seed=1)


def test_members_have_lower_loss_than_non_members(tiny_eval):
    assert tiny_eval.member_loss < tiny_eval.non_member_loss - 0.5  # nats per token
    assert tiny_eval.loss_auc > 0.9


def test_repeated_canary_is_memorised(tiny_eval):
    loss, exposure = tiny_eval.canary_loss, tiny_eval.canary_exposure
    assert set(loss) == set(REPETITIONS)
    assert loss[64] < 0.25 * tiny_eval.fresh_canary_loss
    assert loss[64] < loss[1]
    assert exposure[64] > exposure[1] + 2  # bits
    assert exposure[64] > 12  # of log2 10**6 = 19.9 bits


def test_greedy_decoding_extracts_the_64x_canary(tiny_testbed, tiny_lm):
    canary = next(c for c in tiny_testbed.canaries if c.repetitions == 64)
    prefix_text = canary.text[: -len(canary.secret)]
    prefix = [tiny_lm.tokenizer.bos_token_id, *tiny_lm.encode(prefix_text)]
    cont = tiny_lm.continue_greedy([prefix], 12)[0]
    assert tiny_lm.tokenizer.decode(cont).startswith(canary.secret)


def test_metadata_round_trips_and_splits_are_disjoint(tiny_testbed):
    info, preset = tiny_testbed, PRESETS["tiny"]
    assert load_testbed(info.path) == info
    assert len(info.members) == preset.n_members and len(info.non_members) == preset.n_non_members
    member_ids = {d.id for d in info.members}
    assert len(member_ids) == len(info.members) and member_ids.isdisjoint(d.id for d in info.non_members)
    assert {d.text for d in info.members}.isdisjoint(d.text for d in info.non_members)
    space = info.canary_space()
    assert tuple(c.repetitions for c in info.canaries) == REPETITIONS
    for c in info.canaries:
        assert c.text == space.canary(c.index) and c.text.endswith(c.secret) and len(c.secret) == 6
    assert len({c.index for c in info.canaries}) == len(REPETITIONS)
    assert info.n_params == sum(t.numel() for t in load_file(info.path / "model.safetensors").values())
    assert info.n_params < 1_000_000


def test_saved_tokenizer_reloads_and_round_trips(tiny_testbed):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_testbed.path), local_files_only=True)
    text = tiny_testbed.members[0].text
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.bos_token_id == tok.eos_token_id == tok.pad_token_id
    assert len(ids) + 2 <= PRESETS["tiny"].n_positions


def _weights(path):
    return load_file(path / "model.safetensors")


def test_deterministic_under_seed_via_the_cli(tmp_path):
    a = build_testbed(tmp_path / "a", steps=3, seed=7, preset="tiny", progress=False)
    result = CliRunner().invoke(app, ["build", "--out", str(tmp_path / "b"), "--steps", "3", "--seed", "7",
                                      "--no-evaluate"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 3 and summary["n_params"] == a.n_params
    b = load_testbed(tmp_path / "b")
    assert (a.members, a.non_members, a.canaries, a.final_loss) == (b.members, b.non_members, b.canaries,
                                                                  b.final_loss)
    wa, wb = _weights(a.path), _weights(b.path)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a.path / "tokenizer.json").read_bytes() == (b.path / "tokenizer.json").read_bytes()
    c = build_testbed(tmp_path / "c", steps=3, seed=8, preset="tiny", progress=False)
    assert {d.id for d in c.members} != {d.id for d in a.members}
    assert [x.secret for x in c.canaries] != [x.secret for x in a.canaries]


def test_cli_help_names_the_options():
    result = CliRunner().invoke(app, ["build", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in ("--out", "--preset", "--seed", "--steps", "tiny", "small"):
        assert option in result.output


def test_corpus_documents_are_real_bounded_and_deterministic():
    docs = corpus_documents(320)
    assert len(docs) > 500
    lengths = np.array([len(d.text) for d in docs])
    assert lengths.max() <= 320 and lengths.min() >= 80
    assert len({d.id for d in docs}) == len(docs)
    assert docs == corpus_documents(320)
    assert any("def " in d.text for d in docs) and sum(" the " in d.text for d in docs) > len(docs) / 2


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        build_testbed(tmp_path, preset="huge")
    with pytest.raises(ValueError, match="steps"):
        build_testbed(tmp_path, steps=0)
    with pytest.raises(FileNotFoundError, match="testbed build"):
        load_testbed(tmp_path / "nowhere")


def test_a_missing_info_file_says_which_testbed_and_how_to_build_it(tmp_path):
    from parrotwatch.dp_testbed import load_dp_testbed
    from parrotwatch.pii_testbed import load_pii_testbed

    with pytest.raises(FileNotFoundError, match=r"holds no dp_testbed\.json: build_dp_testbed\(\)"):
        load_dp_testbed(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"holds no pii_testbed\.json: build_pii_testbed\(\)"):
        load_pii_testbed(tmp_path)
