"""Model adapters and the OpenAI-compatible server, against independent references: a manual argmax / sampling
loop over the model's full forward (no cache, no batching), a hand-written chat template, a scripted stub server."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import torch

from nvrepro.core.data.tokenizers import ByteTokenizer, train_bpe_tokenizer
from nvrepro.core.lm.config import AttentionConfig, FFNConfig, MambaConfig, ModelConfig
from nvrepro.core.lm.model import build_model
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.trust.adapters import (EndpointError, NvreproAdapter, OpenAIEndpointAdapter, TransformersAdapter,
                                    adapter_from_config, answer_stop, load_nvrepro_model, render_chat,
                                    sample_seed, save_nvrepro_model)
from nvrepro.trust.serve import serve
from nvrepro.trust.types import GenerationSettings, chat

CHATS = [chat("Be kind.", "Hi there"), chat(None, "What is 2+2?"), chat(None, "What is 3+3?"),
         chat("You are a helpful assistant.", "Tell me a story about a cat.")]
GREEDY = GenerationSettings(max_new_tokens=12)
SAMPLED = GenerationSettings(temperature=0.8, num_samples=3, max_new_tokens=10, seed=7)


def tiny_lm(pattern: str = "M*-", seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(pattern=pattern, d_model=32, vocab_size=260, max_seq_len=160, init_std=0.4,
                      attention=AttentionConfig(n_heads=2, n_kv_heads=2, head_dim=16), ffn=FFNConfig(hidden=64),
                      mamba=MambaConfig(n_heads=4, head_dim=8, d_state=8, n_groups=1, chunk_size=16))
    return build_model(cfg).eval()


@pytest.fixture(scope="module")
def toy():
    return NvreproAdapter(tiny_lm(), ByteTokenizer(), "toy", batch_size=32)


# ------------------------------------------------------------------------------------------------ rendering
def test_render_chat_and_answer_stop():
    msgs = chat("Be kind.", "Hi")
    assert render_chat(msgs) == "system: Be kind.\nuser: Hi\nassistant:"
    assert render_chat(chat(None, "Hi")) == "user: Hi\nassistant:"
    assert answer_stop(" Hello there.\nuser: more") == "Hello there."
    assert answer_stop(" Yes. user: next question") == "Yes."
    assert answer_stop("assistant: x") == ""
    assert answer_stop("the username: kept") == "the username: kept"  # only whole role tags end a turn
    assert answer_stop("  no stop  ") == "no stop"
    with pytest.raises(ValueError, match="messages"):
        render_chat(())


# ------------------------------------------------------------------------------------------------ nvrepro models
def _reference(model, tok, chats, settings):
    """Answers by a plain loop: full forward on the whole sequence each step, one row at a time."""
    out = []
    for c in chats:
        text = render_chat(c)
        ids = [tok.bos_id] + tok.encode(text)
        answers = []
        for j in range(settings.num_samples):
            g = torch.Generator().manual_seed(sample_seed(settings.seed, text, j))
            seq = list(ids)
            for _ in range(settings.max_new_tokens):
                logits = model(torch.tensor([seq]))[0, -1]
                if settings.temperature == 0:
                    t = int(logits.argmax())
                else:
                    t = int(torch.multinomial(torch.softmax(logits / settings.temperature, -1), 1, generator=g))
                seq.append(t)
            new = seq[len(ids):]
            new = new[:new.index(tok.eos_id)] if tok.eos_id in new else new
            answers.append(answer_stop(tok.decode(new)))
        out.append(answers)
    return out


@torch.no_grad()
def test_nvrepro_greedy_and_sampling_match_a_plain_loop(toy):
    for settings in (GREEDY, SAMPLED):
        got = toy.answer(CHATS, settings)
        assert got == _reference(toy.model, toy.tokenizer, CHATS, settings)
        assert all(len(a) == settings.num_samples for a in got)
    # the samples of one chat differ (a random byte model is far from deterministic at T=0.8)
    assert len(set(toy.answer(CHATS[:1], SAMPLED)[0])) > 1


@torch.no_grad()
def test_nvrepro_answer_ends_at_eos(toy):
    """Declare a byte the model emits greedily to be eos: the answer is the text before its first occurrence."""
    text = render_chat(CHATS[1])
    seq = [256] + list(text.encode())
    new = []
    for _ in range(GREEDY.max_new_tokens):
        new.append(int(toy.model(torch.tensor([seq + new]))[0, -1].argmax()))
    eos = next(t for t in new[1:] if 32 <= t < 127)  # a printable byte after the first token

    class EosTokenizer(ByteTokenizer):
        def __init__(self):
            super().__init__()
            self.eos_id = eos

    got = NvreproAdapter(toy.model, EosTokenizer(), "eos").answer(CHATS[1:2], GREEDY)
    assert got == [[answer_stop(bytes(new[:new.index(eos)]).decode("utf-8", errors="replace"))]]
    assert len(got[0][0]) < len(toy.answer(CHATS[1:2], GREEDY)[0][0])


def test_nvrepro_answers_do_not_depend_on_the_batch(toy):
    both = toy.answer(CHATS, SAMPLED)
    alone = [toy.answer([c], SAMPLED)[0] for c in CHATS]
    small = NvreproAdapter(toy.model, toy.tokenizer, "toy", batch_size=2).answer(CHATS[::-1], SAMPLED)[::-1]
    assert both == alone == small
    assert toy.answer(CHATS, SAMPLED) == both  # reproducible
    other_seed = GenerationSettings(temperature=0.8, num_samples=3, max_new_tokens=10, seed=8)
    assert toy.answer(CHATS, other_seed) != both


def test_nvrepro_save_load_roundtrip_and_name(tmp_path, toy):
    path = save_nvrepro_model(tmp_path / "toy.pt", toy.model, ByteTokenizer())
    loaded = adapter_from_config({"kind": "nvrepro", "checkpoint": str(path), "name": "toy"})
    assert loaded.name == toy.name
    assert loaded.answer(CHATS[:2], SAMPLED) == toy.answer(CHATS[:2], SAMPLED)
    # the name fingerprints the weights: one changed weight, another name
    model2, tok2 = load_nvrepro_model(path)
    with torch.no_grad():
        model2.lm_head.weight[0, 0] += 1.0
    assert NvreproAdapter(model2, tok2, "toy").name != toy.name
    # a BPE tokenizer travels inside the file
    bpe = train_bpe_tokenizer(["user: hello there", "assistant: general kenobi"] * 3, vocab_size=270,
                              min_frequency=1)
    torch.manual_seed(1)
    model3 = build_model(ModelConfig(pattern="*-", d_model=16, vocab_size=bpe.vocab_size, max_seq_len=64,
                                     attention=AttentionConfig(n_heads=2, n_kv_heads=2, head_dim=8),
                                     ffn=FFNConfig(hidden=32)))
    save_nvrepro_model(tmp_path / "bpe.pt", model3, bpe)
    _, tok3 = load_nvrepro_model(tmp_path / "bpe.pt")
    assert tok3.encode("user: hello there") == bpe.encode("user: hello there")
    assert tok3.eos_id == bpe.eos_id


def test_adapter_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="adapter.kind"):
        adapter_from_config({"kind": "gpt"})
    with pytest.raises(ConfigError, match="adapter.bogus"):
        adapter_from_config({"kind": "endpoint", "base_url": "http://x", "model": "m", "bogus": 1})
    with pytest.raises(ConfigError, match="adapter.checkpoint"):
        adapter_from_config({"kind": "nvrepro"})
    with pytest.raises(ConfigError, match="missing.pt"):
        adapter_from_config({"kind": "nvrepro", "checkpoint": str(tmp_path / "missing.pt")})
    with pytest.raises(ConfigError, match="nowhere"):
        adapter_from_config({"kind": "transformers", "model_dir": str(tmp_path / "nowhere")})
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIEndpointAdapter("localhost:8000", "m")


# ------------------------------------------------------------------------------------------------ transformers
SENTENCES = ["system: Be kind.", "user: Hi there", "assistant: Hello, how are you?", "user: What is 2+2?",
             "assistant: Four.", "Tell me a story about a cat."]
TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    """Two tiny random GPT-2 models saved locally: without and with a chat template. Returns (dirs, backend)."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = train_bpe_tokenizer(SENTENCES * 2, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=bpe.vocab_size, n_positions=128, n_embd=16, n_layer=1, n_head=2,
                     initializer_range=0.3, bos_token_id=bpe.bos_id, eos_token_id=bpe.eos_id,
                     pad_token_id=bpe.pad_id)
    model = GPT2LMHeadModel(cfg)
    dirs = {}
    for name, template in (("plain", None), ("templated", TEMPLATE)):
        tok = PreTrainedTokenizerFast(tokenizer_object=bpe.backend, bos_token="<bos>", eos_token="<eos>",
                                      pad_token="<pad>")
        if template:
            tok.chat_template = template
        d = tmp_path_factory.mktemp(name)
        model.save_pretrained(d)
        tok.save_pretrained(d)
        dirs[name] = d
    return dirs, bpe


def _hf_greedy_reference(model, bpe, text, max_new_tokens):
    ids = bpe.encode(text)
    new = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            t = int(model(torch.tensor([ids + new])).logits[0, -1].argmax())
            if t == bpe.eos_id:
                break
            new.append(t)
    return bpe.decode(new)


def test_transformers_greedy_matches_a_manual_loop(hf_dirs):
    dirs, bpe = hf_dirs
    plain = TransformersAdapter(dirs["plain"], batch_size=4)  # one left-padded batch of different lengths
    got = plain.answer(CHATS, GREEDY)
    want = [[answer_stop(_hf_greedy_reference(plain.model, bpe, render_chat(c), 12))] for c in CHATS]
    assert got == want
    templated = TransformersAdapter(dirs["templated"], name="tmpl")
    assert templated.name.startswith("tmpl@") and templated.name != plain.name
    by_hand = ["".join(f"<{m.role}>{m.content}\n" for m in c) + "<assistant>" for c in CHATS]
    want = [[_hf_greedy_reference(templated.model, bpe, t, 12).strip()] for t in by_hand]
    assert templated.answer(CHATS, GREEDY) == want


def test_transformers_sampling_is_seeded_and_batch_independent(hf_dirs):
    dirs, _ = hf_dirs
    adapter = TransformersAdapter(dirs["plain"])
    state = torch.get_rng_state()
    both = adapter.answer(CHATS[:3], SAMPLED)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left alone
    assert both == [adapter.answer([c], SAMPLED)[0] for c in CHATS[:3]]
    other = GenerationSettings(temperature=0.8, num_samples=3, max_new_tokens=10, seed=8)
    assert adapter.answer(CHATS[:3], other) != both
    assert all(len(a) == 3 for a in both)


# ------------------------------------------------------------------------------------------------ server + endpoint
class EchoAdapter:
    """Deterministic fake: each answer spells out what it was asked."""

    name = "echo"

    def answer(self, chats, settings):
        return [[f"{c[-1].content[::-1]}|{len(c)}|T={settings.temperature}|s={settings.seed}|"
                 f"m={settings.max_new_tokens}|{j}" for j in range(settings.num_samples)] for c in chats]


def test_endpoint_through_server_equals_direct_answers(toy):
    for adapter in (EchoAdapter(), toy):
        with serve(adapter) as url:
            models = requests.get(f"{url}/models", timeout=5).json()
            assert [m["id"] for m in models["data"]] == [adapter.name]
            remote = OpenAIEndpointAdapter(url, adapter.name, timeout=10, max_retries=0)
            assert remote.name == f"endpoint:{url}|{adapter.name}"
            for settings in (GREEDY, SAMPLED):
                assert remote.answer(CHATS, settings) == adapter.answer(CHATS, settings)


def test_server_error_paths():
    with serve(EchoAdapter()) as url:
        with pytest.raises(EndpointError, match="404"):
            OpenAIEndpointAdapter(url + "/nope", "echo", max_retries=0).answer(CHATS[:1], GREEDY)
        resp = requests.post(f"{url}/chat/completions", data=b"{not json", timeout=5)
        assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]["message"]
        resp = requests.post(f"{url}/chat/completions", json={"messages": [{"role": "bot", "content": "x"}]},
                             timeout=5)
        assert resp.status_code == 400 and "messages[0].role" in resp.json()["error"]["message"]
        resp = requests.post(f"{url}/chat/completions", timeout=5,
                             json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})
        assert resp.status_code == 400 and "max_new_tokens" in resp.json()["error"]["message"]
        # greedy with n > 1: the one greedy answer, n times
        resp = requests.post(f"{url}/chat/completions", timeout=5,
                             json={"messages": [{"role": "user", "content": "ab"}], "temperature": 0, "n": 2})
        assert [c["message"]["content"] for c in resp.json()["choices"]] == ["ba|1|T=0.0|s=0|m=24|0"] * 2
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = OpenAIEndpointAdapter(f"http://127.0.0.1:{port}/v1", "m", timeout=0.5, max_retries=2, backoff=0.01)
    with pytest.raises(EndpointError, match="after 3 attempts"):
        down.answer(CHATS[:1], GREEDY)


@pytest.fixture
def stub():
    """A scripted server: each POST pops (status, body) from ``script``; it records every request."""
    state = {"script": [], "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["requests"].append((body, self.headers.get("Authorization")))
            status, reply = state["script"].pop(0) if state["script"] else (200, None)
            if reply is None:  # one choice only, whatever n asks: a server that ignores n
                reply = {"choices": [{"message": {"role": "assistant", "content": f" seed{body['seed']} "}}]}
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def test_endpoint_retries_fills_n_and_reports_server_message(stub, monkeypatch):
    monkeypatch.setenv("TRUST_TEST_KEY", "sk-test")
    adapter = OpenAIEndpointAdapter(stub["url"], "m", api_key_env="TRUST_TEST_KEY", max_retries=2, backoff=0.01,
                                    concurrency=1)
    stub["script"] = [(429, {"error": {"message": "slow down"}}), (503, {"error": "busy"})]
    assert adapter.answer(CHATS[:1], SAMPLED) == [["seed7", "seed8", "seed9"]]
    bodies = [b for b, _ in stub["requests"]]
    assert len(bodies) == 5 and [b["n"] for b in bodies[2:]] == [3, 2, 1]
    assert bodies[0]["messages"] == [m.to_dict() for m in CHATS[0]] and bodies[0]["max_tokens"] == 10
    assert bodies[0]["temperature"] == 0.8 and bodies[0]["model"] == "m"
    assert stub["requests"][0][1] == "Bearer sk-test"
    stub["script"] = [(500, {"error": {"message": "model exploded"}})] * 3
    with pytest.raises(EndpointError, match="after 3 attempts.*model exploded"):
        adapter.answer(CHATS[:1], GREEDY)
    stub["script"] = [(401, {"error": {"message": "bad key"}})]
    with pytest.raises(EndpointError, match="401: bad key"):
        adapter.answer(CHATS[:1], GREEDY)


def test_serve_main_config_errors(tmp_path):
    from nvrepro.trust.serve import main

    cfg = tmp_path / "adapter.yaml"
    cfg.write_text("adapter:\n  kind: nvrepro\n  checkpoint: /does/not/exist.pt\n")
    with pytest.raises(ConfigError, match="exist.pt"):
        main(["--config", str(cfg), "--port", "0"])

