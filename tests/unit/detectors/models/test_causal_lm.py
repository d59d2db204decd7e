"""CausalLMScorer (detectors/models/causal_lm.py, generation.py) on the tiny testbed model: windows,
parity with the Hugging Face perplexity guide and with one-by-one scoring, the Min-K%++ moments,
greedy / beam continuations, the per-process cache and the OOM split."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from parrotwatch.detectors.audits.membership import next_token_logp_moments
from parrotwatch.detectors.models import causal_lm
from parrotwatch.detectors.models.causal_lm import (
    CausalLMScorer,
    CausalLMSpec,
    get_causal_lm,
    plan_windows,
)
from parrotwatch.detectors.models.encoder import MissingModelError


def _long_text(info, min_tokens: int, lm) -> str:
    text = ""
    for doc in info.members + info.non_members:
        text = f"{text}\n\n{doc.text}" if text else doc.text
        if len(lm.encode(text)) >= min_tokens:
            return text
    raise AssertionError("the corpus is too short")


def _full_ids(lm, text):
    return [lm.tokenizer.bos_token_id, *lm.encode(text)]


def test_plan_windows_golden():
    # n=10, W=4, S=2: [0,4) scores 1..3; [2,6) scores 4,5 (from 2 in-window); [4,8) 6,7; [6,10) 8,9
    assert plan_windows(10, 4, 2) == [(0, 4, 1), (2, 6, 2), (4, 8, 2), (6, 10, 2)]
    assert plan_windows(3, 4, 2) == [(0, 3, 1)]
    assert plan_windows(1, 4, 2) == []
    with pytest.raises(ValueError, match="stride"):
        plan_windows(10, 4, 4)


@pytest.mark.parametrize("n,window,stride", [(2, 2, 1), (17, 5, 1), (40, 8, 3), (100, 16, 15), (33, 32, 16)])
def test_plan_windows_scores_each_position_once_with_enough_context(n, window, stride):
    scored = []
    for begin, end, first in plan_windows(n, window, stride):
        assert 1 <= first < end - begin <= window
        for pos in range(begin + first, end):
            scored.append(pos)
            assert pos - begin >= min(pos, window - stride)  # tokens of context
    assert scored == list(range(1, n))


def test_scores_every_token_with_bos_and_decodes_back(tiny_lm, tiny_testbed):
    text = tiny_testbed.members[0].text
    s = tiny_lm.score_texts([text])[0]
    ids = tiny_lm.encode(text)
    assert s.token_ids.tolist() == ids
    assert "".join(s.tokens) == text
    assert s.logprobs.shape == (len(ids),) and (s.logprobs < 0).all()
    assert s.mu is None and s.sigma2 is None
    empty = tiny_lm.score_texts([""])[0]
    assert empty.logprobs.shape == (0,) and empty.tokens == ()


def test_logprobs_and_moments_match_a_direct_forward(tiny_lm, tiny_testbed):
    text = tiny_testbed.non_members[3].text
    s = tiny_lm.score_texts([text], with_distribution=True)[0]
    full = _full_ids(tiny_lm, text)
    with torch.no_grad():
        logits = tiny_lm.model(torch.tensor([full])).logits[0, :-1].double()
    rows = torch.log_softmax(logits, -1).numpy()
    np.testing.assert_allclose(s.logprobs, rows[np.arange(len(full) - 1), full[1:]], atol=1e-5)
    mu, var = next_token_logp_moments(rows)
    np.testing.assert_allclose(s.mu, mu, atol=1e-4)
    np.testing.assert_allclose(s.sigma2, var, atol=1e-4)
    assert (s.sigma2 >= 0).all() and (s.mu <= 0).all()


def test_sliding_window_equals_full_context_when_the_window_covers_the_text(tiny_testbed):
    lm_full = get_causal_lm(tiny_testbed.spec(batch_size=4))
    text = _long_text(tiny_testbed, 100, lm_full)
    n = len(lm_full.encode(text))
    assert 100 <= n < lm_full.context  # one window of the full model covers it
    full = lm_full.score_texts([text])[0].logprobs
    windowed = get_causal_lm(tiny_testbed.spec(batch_size=4, max_length=48, stride=16))
    assert len(plan_windows(n + 1, 48, 16)) > 3
    part = windowed.score_texts([text])[0].logprobs
    assert part.shape == full.shape
    # the first window's tokens have the same context in both runs
    np.testing.assert_allclose(part[:47], full[:47], atol=1e-5)
    # later tokens lost context, so they differ; the covering window reproduces the full value exactly
    assert not np.allclose(part[47:], full[47:], atol=1e-3)
    covering = get_causal_lm(tiny_testbed.spec(batch_size=4, max_length=n + 1, stride=1))
    np.testing.assert_allclose(covering.score_texts([text])[0].logprobs, full, atol=1e-5)


def test_stride_one_gives_each_token_the_last_window_minus_one_tokens(tiny_testbed):
    window = 12
    lm = get_causal_lm(tiny_testbed.spec(batch_size=8, max_length=window, stride=1))
    text = tiny_testbed.members[5].text
    got = lm.score_texts([text])[0].logprobs
    full = _full_ids(lm, text)
    want = []
    with torch.no_grad():
        for t in range(1, len(full)):
            ctx = full[max(0, t - window + 1):t + 1]
            lp = torch.log_softmax(lm.model(torch.tensor([ctx])).logits[0, -2].double(), -1)
            want.append(float(lp[full[t]]))
    np.testing.assert_allclose(got, want, atol=1e-5)


def _hf_guide_nll(model, full_ids, max_length, stride):
    """The loop of the Hugging Face guide "Perplexity of fixed-length models", with exact token counts."""
    ids = torch.tensor([full_ids])
    nll, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(full_ids), stride):
        end = min(begin + max_length, len(full_ids))
        trg_len = end - prev_end
        input_ids = ids[:, begin:end]
        target = input_ids.clone()
        target[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target).loss
        valid = int((target[:, 1:] != -100).sum())
        nll += float(loss) * valid
        count += valid
        prev_end = end
        if end == len(full_ids):
            break
    return nll, count


@pytest.mark.parametrize("max_length,stride", [(None, None), (64, 16), (32, 31)])
def test_total_surprisal_matches_the_hugging_face_perplexity_guide(tiny_testbed, max_length, stride):
    lm = get_causal_lm(tiny_testbed.spec(batch_size=4, max_length=max_length, stride=stride))
    text = _long_text(tiny_testbed, 300, lm)  # longer than the model's 128-token context
    got = lm.score_texts([text])[0].logprobs
    nll, count = _hf_guide_nll(lm.model, _full_ids(lm, text), lm.window, lm.stride)
    assert count == got.size >= 300
    assert -got.sum() == pytest.approx(nll, rel=1e-5)


@pytest.mark.parametrize("with_distribution", [False, True])
def test_batched_with_padding_equals_one_by_one(tiny_testbed, with_distribution):
    texts = [d.text for d in tiny_testbed.members[:5] + tiny_testbed.non_members[:5]]
    texts += ["x", "", _long_text(tiny_testbed, 200, get_causal_lm(tiny_testbed.spec(batch_size=4)))]
    batched = get_causal_lm(tiny_testbed.spec(batch_size=6, stride=32)).score_texts(texts, with_distribution)
    single = get_causal_lm(tiny_testbed.spec(batch_size=1, stride=32))
    assert len({len(t) for t in texts}) > 5  # real padding
    for text, b in zip(texts, batched, strict=True):
        one = single.score_texts([text], with_distribution)[0]
        assert b.token_ids.tolist() == one.token_ids.tolist()
        np.testing.assert_allclose(b.logprobs, one.logprobs, atol=1e-4)
        if with_distribution:
            np.testing.assert_allclose(b.mu, one.mu, atol=1e-4)
            np.testing.assert_allclose(b.sigma2, one.sigma2, atol=1e-4)


def test_without_bos_the_first_token_is_not_scored(tiny_testbed, tiny_lm):
    text = tiny_testbed.members[1].text
    s = get_causal_lm(tiny_testbed.spec(batch_size=4, prepend_bos=False)).score_texts([text])[0]
    assert s.token_ids.tolist() == tiny_lm.encode(text)[1:]


def test_bf16_autocast_is_close_to_fp32(tiny_testbed, tiny_lm):
    text = tiny_testbed.members[2].text
    bf16 = get_causal_lm(tiny_testbed.spec(batch_size=4, precision="bf16"))
    assert bf16.precision == "bf16" and tiny_lm.precision == "fp32"  # auto on the CPU is fp32
    diff = np.abs(bf16.score_texts([text])[0].logprobs - tiny_lm.score_texts([text])[0].logprobs)
    assert diff.mean() < 0.05 and diff.max() < 0.5


def test_cache_loads_once_and_pickles_by_spec(tiny_testbed):
    spec = tiny_testbed.spec(batch_size=3)
    lm = get_causal_lm(spec)
    assert get_causal_lm(spec) is lm and causal_lm.LOADS[spec] == 1
    assert pickle.loads(pickle.dumps(lm)) is lm
    assert len(pickle.dumps(lm)) < 2000  # the spec, not the weights
    assert causal_lm.LOADS[spec] == 1


def test_bad_specs_say_how_to_fix(tmp_path, tiny_testbed):
    with pytest.raises(MissingModelError, match="testbed build"):
        CausalLMScorer(CausalLMSpec(model=str(tmp_path)))
    with pytest.raises(ValueError, match="context"):
        CausalLMScorer(tiny_testbed.spec(max_length=4096))
    with pytest.raises(ValueError, match="stride"):
        CausalLMScorer(tiny_testbed.spec(max_length=16, stride=16))


def _greedy_by_hand(model, prefix, n, eos):
    ids = list(prefix)
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            ids.append(nxt)
            if nxt == eos:
                break
    return ids[len(prefix):]


def test_greedy_batched_equals_one_by_one_and_a_hand_argmax_loop(tiny_lm, tiny_testbed):
    bos = tiny_lm.tokenizer.bos_token_id
    docs = tiny_testbed.members[:6]
    prefixes = [[bos, *tiny_lm.encode(d.text)[:k]] for d, k in zip(docs, [3, 9, 1, 15, 6, 12], strict=True)]
    before = [list(p) for p in prefixes]
    batched = tiny_lm.continue_greedy(prefixes, 20)
    assert prefixes == before  # inputs are not mutated
    for prefix, cont in zip(prefixes, batched, strict=True):
        assert cont == tiny_lm.continue_greedy([prefix], 20)[0]
        assert cont == _greedy_by_hand(tiny_lm.model, prefix, 20, tiny_lm.tokenizer.eos_token_id)
        assert 1 <= len(cont) <= 20


def test_beam_batched_equals_one_by_one(tiny_lm, tiny_testbed):
    bos = tiny_lm.tokenizer.bos_token_id
    docs = tiny_testbed.non_members[:4]
    prefixes = [[bos, *tiny_lm.encode(d.text)[:k]] for d, k in zip(docs, [2, 10, 5, 7], strict=True)]
    batched = tiny_lm.continue_beam(prefixes, 12, num_beams=3)
    assert batched == [tiny_lm.continue_beam([p], 12, num_beams=3)[0] for p in prefixes]
    assert all(1 <= len(c) <= 12 for c in batched)
    with pytest.raises(ValueError, match="num_beams"):
        tiny_lm.continue_beam(prefixes, 5, num_beams=1)


def test_continuation_inputs_are_checked(tiny_lm):
    with pytest.raises(ValueError, match="at least one token"):
        tiny_lm.continue_greedy([[1, 2], []], 5)
    with pytest.raises(ValueError, match="context"):
        tiny_lm.continue_greedy([[1] * 120], 20)
    with pytest.raises(ValueError, match="token ids"):
        tiny_lm.continue_greedy([[10**6]], 2)


def test_fused_gelu_scores_equal_the_checkpoint_as_saved(tiny_lm, tiny_testbed):
    """gelu_new is loaded as the fused gelu_pytorch_tanh: the same function, to float rounding."""
    from transformers import AutoModelForCausalLM
    from transformers.activations import NewGELUActivation, PytorchGELUTanh

    saved = AutoModelForCausalLM.from_pretrained(str(tiny_testbed.path), local_files_only=True).eval()
    assert saved.config.activation_function == "gelu_new"
    assert isinstance(saved.transformer.h[0].mlp.act, NewGELUActivation)
    assert isinstance(tiny_lm.model.transformer.h[0].mlp.act, PytorchGELUTanh)
    text = tiny_testbed.members[4].text
    full = _full_ids(tiny_lm, text)
    with torch.no_grad():
        rows = torch.log_softmax(saved(torch.tensor([full])).logits[0, :-1].double(), -1).numpy()
    got = tiny_lm.score_texts([text])[0].logprobs
    np.testing.assert_allclose(got, rows[np.arange(len(full) - 1), full[1:]], atol=1e-5)


@pytest.mark.parametrize("with_distribution", [False, True])
def test_head_on_scored_positions_equals_the_full_forward_in_any_chunking(tiny_testbed, monkeypatch,
                                                                          with_distribution):
    """The LM head on the scored positions only (padding and context-only window positions skipped), in
    chunks of any size, gives what the whole forward's logits give."""
    spec = tiny_testbed.spec(batch_size=5, max_length=40, stride=12)
    texts = [d.text for d in tiny_testbed.members[:4] + tiny_testbed.non_members[:4]] + ["y", ""]
    split = CausalLMScorer(spec)
    assert split._split is not None  # GPT-2: a plain head
    reference = CausalLMScorer(spec)
    reference._split = None  # the whole forward, as for an architecture outside _PLAIN_HEAD
    want = reference.score_texts(texts, with_distribution)
    monkeypatch.setattr(causal_lm, "_CHUNK_ROWS", 7)  # chunks that cut through windows
    for got in (split.score_texts(texts, with_distribution), reference.score_texts(texts, with_distribution)):
        for g, w in zip(got, want, strict=True):
            assert g.token_ids.tolist() == w.token_ids.tolist()
            np.testing.assert_allclose(g.logprobs, w.logprobs, atol=1e-5)
            if with_distribution:
                np.testing.assert_allclose(g.mu, w.mu, atol=1e-5)
                np.testing.assert_allclose(g.sigma2, w.sigma2, atol=1e-5)
            else:
                assert g.mu is None and g.sigma2 is None


def test_encode_many_equals_encode_one_by_one(tiny_lm, tiny_testbed):
    texts = [d.text for d in tiny_testbed.members[:6]] + ["", "é ü", "x"]
    one_by_one = [list(tiny_lm.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert tiny_lm.encode_many(texts) == one_by_one
    assert [tiny_lm.encode(t) for t in texts] == one_by_one
    assert tiny_lm.encode_many([]) == []
