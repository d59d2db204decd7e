"""The OpenAI-compatible endpoint backend against a real HTTP server: ``parrotwatch testbed serve`` over the
tiny testbed, started as its own process. The same model scored locally is the oracle."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from parrotwatch.stack.processes import free_port
from tests.served_lm import served_testbed

MODEL = "tiny-testbed"


@pytest.fixture(scope="module")
def testbed(audit_home):
    from parrotwatch.audits.inputs import testbed_dir
    from parrotwatch.audits.spec import TestbedRef
    from parrotwatch.testbed import load_testbed

    return load_testbed(testbed_dir(audit_home, TestbedRef()))


@pytest.fixture(scope="module")
def endpoint(testbed, tmp_path_factory):
    """``http://127.0.0.1:PORT/v1`` of a server process serving the testbed as ``tiny-testbed``."""
    with served_testbed(testbed.path, tmp_path_factory.mktemp("lm-server"), MODEL) as url:
        yield url


def _scorer(url: str, **options):
    from parrotwatch.audits.endpoint_lm import OpenAICompletionsScorer, OpenAICompletionsSpec

    return OpenAICompletionsScorer(OpenAICompletionsSpec(url=url, model=MODEL, **options))


def test_endpoint_scores_equal_the_local_model(testbed, endpoint):
    from parrotwatch.detectors.models.causal_lm import get_causal_lm

    texts = [d.text for d in testbed.members[:5]] + [d.text for d in testbed.non_members[:5]]
    texts += ["a", "caf\u00e9 na\u00efve \u2014 \u00fcber", " ".join(d.text for d in testbed.members[:4])]
    local = get_causal_lm(testbed.spec()).score_texts(texts)
    remote = _scorer(endpoint, batch_size=4).score_texts(texts)
    assert len(remote) == len(texts)
    assert len(local[-1].logprobs) > 128  # the long text is scored in sliding windows on both sides
    for r, s in zip(remote, local, strict=True):
        assert len(r.logprobs) == len(s.logprobs) > 0
        # float32 round-off only: the server batches the windows differently (16 per pass, not 4)
        np.testing.assert_allclose(r.logprobs, s.logprobs, rtol=0, atol=2e-5)
        assert (r.token_ids == -1).all()  # the endpoint returns no ids


def test_prompt_tokens_are_cut_from_the_generated_ones(testbed, endpoint):
    """A server's answer to max_tokens > 0: the generated tokens follow the prompt and are not scored."""
    from parrotwatch.audits.endpoint_lm import prompt_scores

    text = testbed.members[0].text
    body = {"model": MODEL, "prompt": text, "echo": True, "logprobs": 0, "max_tokens": 5, "temperature": 0}
    choice = httpx.post(f"{endpoint}/completions", json=body, timeout=60).json()["choices"][0]
    assert choice["text"].startswith(text) and len(choice["text"]) > len(text)
    lp = choice["logprobs"]
    assert lp["tokens"][0] == "" and lp["token_logprobs"][0] is None  # the BOS, echoed as vLLM does
    assert lp["text_offset"][-5:] == sorted(lp["text_offset"][-5:]) and lp["text_offset"][-5] == len(text)
    scored = prompt_scores(text, choice)
    assert len(scored.logprobs) == len(lp["tokens"]) - 1 - 5
    assert "".join(scored.tokens) == text


def test_what_an_endpoint_cannot_give_and_what_it_refuses(endpoint):
    from parrotwatch.audits.endpoint_lm import EndpointError, UnsupportedByEndpoint

    with pytest.raises(UnsupportedByEndpoint, match="Min-K%"):
        _scorer(endpoint).score_texts(["some text"], with_distribution=True)
    from parrotwatch.audits.endpoint_lm import OpenAICompletionsScorer, OpenAICompletionsSpec

    wrong = OpenAICompletionsScorer(OpenAICompletionsSpec(url=endpoint, model="gpt-17"))
    with pytest.raises(EndpointError, match="404.*not served here"):  # a 4xx is final, not retried
        wrong.score_texts(["some text"])
    r = httpx.post(f"{endpoint}/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 3,
                                                     "temperature": 0.7}, timeout=30)
    assert r.status_code == 400 and "greedily" in r.json()["detail"]


def test_connection_errors_are_retried_then_raised():
    closed = _scorer(f"http://127.0.0.1:{free_port()}/v1", max_attempts=3, timeout_s=2)
    calls = []
    original = closed._client.post
    closed._client.post = lambda *a, **k: calls.append(1) or original(*a, **k)
    with pytest.raises(httpx.ConnectError):
        closed.score_texts(["x"])
    assert len(calls) == 3


def test_membership_audit_through_the_endpoint_matches_the_local_run(audit_home, testbed, endpoint, tmp_path):
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import load_spec

    (tmp_path / "members.jsonl").write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n"
                                                    for d in testbed.members[:24]))
    (tmp_path / "non_members.jsonl").write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n"
                                                        for d in testbed.non_members[:24]))
    common = ("data: {members: members.jsonl, non_members: non_members.jsonl}\n"
              "audits:\n  membership: {methods: [loss, zlib, lowercase, min_k], n_bootstrap: 50}\n")
    (tmp_path / "local.yaml").write_text(f"name: local\nmodel: {testbed.path}\n{common}")
    (tmp_path / "remote.yaml").write_text(
        f"name: remote\nmodel:\n  endpoint: {{url: '{endpoint}', model: {MODEL}}}\n  batch_size: 8\n{common}")
    local = run_audits(load_spec(tmp_path / "local.yaml"), audit_home, progress=False).result("membership")
    remote = run_audits(load_spec(tmp_path / "remote.yaml"), audit_home, progress=False).result("membership")
    for method in ("loss", "zlib", "lowercase", "min_k"):
        # scores agree to float32 round-off (batched differently), which can reorder a near-tie of the ROC
        assert remote.metric("auc", method=method).value == pytest.approx(
            local.metric("auc", method=method).value, abs=0.01)
    assert remote.metric("auc", method="loss").value > 0.5
    by_id = {s.sample_id: s.score for s in local.samples}
    assert all(s.score == pytest.approx(by_id[s.sample_id], abs=1e-4) for s in remote.samples)


def test_chat_completions_answer_as_the_openai_api_with_the_local_models_numbers(testbed, endpoint):
    """``/v1/chat/completions`` (issue 16: the official client's API): greedy text, usage, finish
    reason and per-token logprobs equal to the local scorer's; streaming gives the same text."""
    from parrotwatch.detectors.models.causal_lm import get_causal_lm
    from parrotwatch.services.lm_server import ChatMessage, chat_prompt

    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": [{"type": "text", "text": testbed.members[0].text[:80]}]}]
    body = {"model": MODEL, "messages": messages, "max_tokens": 12, "logprobs": True, "temperature": 0}
    answer = httpx.post(f"{endpoint}/chat/completions", json=body, timeout=60).json()
    (choice,) = answer["choices"]
    usage = answer["usage"]
    assert answer["object"] == "chat.completion" and choice["message"]["role"] == "assistant"
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert choice["finish_reason"] == ("length" if usage["completion_tokens"] == 12 else "stop")
    tokens = choice["logprobs"]["content"]
    assert len(tokens) == usage["completion_tokens"] and "".join(t["token"] for t in tokens) == \
        choice["message"]["content"]

    local = get_causal_lm(testbed.spec())
    prompt = chat_prompt(local.tokenizer, [ChatMessage(**m) for m in messages])
    ids = local.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert usage["prompt_tokens"] == len(ids)
    (scored,) = local.score_texts([prompt + choice["message"]["content"]])
    np.testing.assert_allclose([t["logprob"] for t in tokens], scored.logprobs[-len(tokens):], atol=1e-4)

    streamed = httpx.post(f"{endpoint}/chat/completions", timeout=60, json={
        **body, "stream": True, "stream_options": {"include_usage": True}})
    lines = [line.removeprefix("data: ") for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert streamed.headers["content-type"].startswith("text/event-stream") and lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == \
        choice["message"]["content"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage
    assert httpx.post(f"{endpoint}/chat/completions", json={**body, "model": "other"}).status_code == 404
    assert httpx.post(f"{endpoint}/chat/completions", json={**body, "messages": []}).status_code == 422
