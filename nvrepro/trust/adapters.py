"""Model adapters: the models the DecodingTrust harness questions, behind :class:`~nvrepro.trust.types.ModelAdapter`.

* :class:`NvreproAdapter`: any nvrepro :class:`~nvrepro.core.lm.model.PatternLM` with an nvrepro tokenizer (the
  toy models), saved and loaded with :func:`save_nvrepro_model` / :func:`load_nvrepro_model`;
* :class:`TransformersAdapter`: a Hugging Face causal LM from a local directory (nothing is downloaded);
* :class:`OpenAIEndpointAdapter`: any OpenAI-compatible ``/chat/completions`` endpoint (the paper questions
  GPT-3.5 and GPT-4 through the OpenAI API; :mod:`nvrepro.trust.serve` puts a toy model behind one);
* :func:`adapter_from_config`: one of the three from a plain dict (a YAML's ``adapter:`` section).

Models without a chat template see chats rendered by :func:`render_chat`, and their sampled text is cut at the end
of the assistant's turn by :func:`answer_stop`; the toy models are trained on the same rendering followed by
``" " + answer + <eos>`` (``nvrepro.trust.data.encode_example``), so training and questioning agree.

Each adapter's ``name`` carries a fingerprint of its weights (or endpoint), so answer caches
(:mod:`nvrepro.trust.answer_cache`) never mix two models' answers.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from nvrepro.core.evaluation.modes import eval_mode
from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.model import PatternLM, build_model
from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict, require
from nvrepro.trust.types import ROLES, GenerationSettings, Message

FORMAT = "nvrepro.trust.model/1"
ADAPTER_KINDS = ("nvrepro", "transformers", "endpoint")
_ROLE_TAG = re.compile(r"(?:^|\s)(?:%s):" % "|".join(ROLES))


# ---------------------------------------------------------------------------------------------- chat rendering
def render_chat(messages: Sequence[Message]) -> str:
    """The plain chat template for models without one: one ``"<role>: <content>"`` line per message, then
    ``"assistant:"`` (the generation prompt), e.g. ``"system: Be kind.\\nuser: Hi\\nassistant:"``.

    The answer follows after one space and ends the turn with the end-of-sequence token (or, in plain text, a
    newline): a toy model's training row is ``<bos> + render_chat(chat)`` then ``" " + answer + <eos>``."""
    if not messages:
        raise ValueError("messages: a chat needs at least one message")
    return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"


def answer_stop(text: str) -> str:
    """The assistant's turn in sampled ``text``: cut at the first newline or at the next role tag
    (``"user:"``, ...), surrounding whitespace stripped."""
    text = text.split("\n", 1)[0]
    match = _ROLE_TAG.search(text)
    return (text[:match.start()] if match else text).strip()


def sample_seed(seed: int, prompt: str, sample: int) -> int:
    """The seed of answer ``sample`` to the chat rendered as ``prompt``: a 63-bit hash of the three.

    Deriving it from the chat's text, not its position in a call, makes a chat's answers the same whether it is
    asked alone or among others (so cached and fresh answers agree)."""
    digest = hashlib.sha256(f"{seed}|{sample}|{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- nvrepro models
def _tokenizer_spec(tokenizer) -> dict[str, str]:
    """A JSON-able description of an nvrepro tokenizer: ``{"kind": "byte"}`` or ``{"kind": "bpe", "json": ...}``."""
    from nvrepro.core.data.tokenizers import BPETokenizer, ByteTokenizer, PretrainedTokenizer

    if isinstance(tokenizer, Mapping):
        return dict(tokenizer)
    if isinstance(tokenizer, ByteTokenizer):
        return {"kind": "byte"}
    if isinstance(tokenizer, BPETokenizer) and not isinstance(tokenizer, PretrainedTokenizer):
        return {"kind": "bpe", "json": tokenizer.backend.to_str()}
    raise ConfigError(f"tokenizer: cannot describe {type(tokenizer).__name__}; use a ByteTokenizer or BPETokenizer")


def tokenizer_from_spec(spec: Mapping[str, str]):
    """The nvrepro tokenizer described by ``spec`` (see :func:`save_nvrepro_model`)."""
    from tokenizers import Tokenizer

    from nvrepro.core.data.tokenizers import BPETokenizer, ByteTokenizer

    kind = spec.get("kind") if isinstance(spec, Mapping) else None
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe" and isinstance(spec.get("json"), str):
        return BPETokenizer(Tokenizer.from_str(spec["json"]))
    raise ConfigError(f"tokenizer.kind: expected 'byte', or 'bpe' with its 'json', got {kind!r}")


def save_nvrepro_model(path: str | os.PathLike, model: PatternLM, tokenizer_spec) -> Path:
    """Write ``model`` and its tokenizer to the torch file ``path``: ``{"format", "model_config" (ModelConfig
    dict), "state_dict", "tokenizer"}``, loadable with ``torch.load(weights_only=True)``. ``tokenizer_spec``: a
    ByteTokenizer / BPETokenizer, or its description ``{"kind": "byte"}`` / ``{"kind": "bpe", "json": str}``."""
    if type(model.cfg) is not ModelConfig:
        raise ConfigError(f"model: only plain PatternLM models can be saved, got a {type(model.cfg).__name__}")
    spec = _tokenizer_spec(tokenizer_spec)
    tokenizer_from_spec(spec)  # fail now, not at load time
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save({"format": FORMAT, "model_config": model.cfg.to_dict(), "state_dict": state, "tokenizer": spec}, tmp)
    os.replace(tmp, path)
    return path


def load_nvrepro_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """``(model, tokenizer)`` from a file written by :func:`save_nvrepro_model` (model in eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"adapter.checkpoint: no such file {str(path)!r}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, or one holding more than tensors and plain data
        reason = f"{type(e).__name__}: {str(e)[:200]}"
        raise ConfigError(f"adapter.checkpoint: cannot read {str(path)!r}: {reason}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"adapter.checkpoint: {str(path)!r} is not a {FORMAT} file (see save_nvrepro_model)")
    model = build_model(ModelConfig.from_dict(data["model_config"]))
    model.load_state_dict(data["state_dict"])
    return model.to(device).eval(), tokenizer_from_spec(data["tokenizer"])


def model_fingerprint(model: torch.nn.Module, tokenizer) -> str:
    """SHA-256 over the model's config, every state-dict tensor (name, dtype, shape, bytes) and the tokenizer."""
    h = hashlib.sha256()
    cfg = getattr(model, "cfg", None)
    h.update(json.dumps(cfg.to_dict() if cfg is not None else None, sort_keys=True, default=str).encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    try:
        h.update(json.dumps(_tokenizer_spec(tokenizer), sort_keys=True).encode())
    except ConfigError:
        h.update(repr(tokenizer).encode())
    return h.hexdigest()


class NvreproAdapter:
    """An nvrepro ``PatternLM`` with an nvrepro tokenizer (``encode``/``decode``/``bos_id``/``eos_id``).

    A chat's prompt is ``[bos] + encode(render_chat(chat))``, left-truncated to leave room for the answer
    (``max_seq_len - max_new_tokens`` tokens: the end of the chat holds the question). Answer ``j`` of a chat is
    sampled with a ``torch.Generator`` seeded by :func:`sample_seed` ``(settings.seed, prompt, j)`` (greedy at
    temperature 0), stops at ``eos`` or a newline, and is cut by :func:`answer_stop`.

    Prompts of equal token length are batched together, each repeated ``num_samples`` times, up to
    ``batch_size`` rows: no padding, so Mamba-2 states see only real tokens (as in
    :mod:`nvrepro.core.evaluation.generation`), and each row draws from its own generator, so answers do not
    depend on what else is in the batch. ``name``: ``"<label>@<first 12 hex of model_fingerprint>"``.
    """

    def __init__(self, model: PatternLM, tokenizer, name: str = "nvrepro", batch_size: int = 32):
        require(isinstance(batch_size, int) and batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size!r}")
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.label = name
        self.name = f"{name}@{model_fingerprint(model, tokenizer)[:12]}"
        vocab = model.cfg.vocab_size
        # Tokens that end a turn: eos and any token whose text holds a newline (the end of a turn in plain text).
        self._stop_ids = {i for i in range(min(vocab, tokenizer.vocab_size)) if "\n" in tokenizer.decode([i])}
        if tokenizer.eos_id is not None:
            self._stop_ids.add(tokenizer.eos_id)

    def prompt_ids(self, messages: Sequence[Message], max_new_tokens: int) -> list[int]:
        """Token ids of the prompt for ``messages`` (see the class docstring)."""
        room = self.model.cfg.max_seq_len - max_new_tokens
        require(room >= 1, "generation.max_new_tokens",
                f"{max_new_tokens} leaves no room for a prompt within max_seq_len={self.model.cfg.max_seq_len}")
        bos = [self.tokenizer.bos_id] if self.tokenizer.bos_id is not None else []
        ids = bos + self.tokenizer.encode(render_chat(messages))
        return ids[-room:]

    def answer(self, chats: Sequence[Sequence[Message]], settings: GenerationSettings) -> list[list[str]]:
        """``settings.num_samples`` answers per chat, in input order."""
        n = settings.num_samples
        prompts = [self.prompt_ids(c, settings.max_new_tokens) for c in chats]
        texts = [render_chat(c) for c in chats]
        rows = [(i, j) for i in range(len(chats)) for j in range(n)]  # one row per answer
        groups: dict[int, list[tuple[int, int]]] = {}
        for i, j in rows:
            groups.setdefault(len(prompts[i]), []).append((i, j))
        out = [[""] * n for _ in chats]
        for _, members in sorted(groups.items()):
            for k in range(0, len(members), self.batch_size):
                chunk = members[k:k + self.batch_size]
                seeds = [sample_seed(settings.seed, texts[i], j) for i, j in chunk]
                new = self._decode([prompts[i] for i, _ in chunk], seeds, settings)
                for (i, j), ids in zip(chunk, new):
                    out[i][j] = answer_stop(self.tokenizer.decode(ids))
        return out

    @torch.no_grad()
    def _decode(self, prompts: list[list[int]], seeds: list[int], settings: GenerationSettings) -> list[list[int]]:
        """New token ids per row (up to and excluding the first stop token) for equal-length ``prompts``."""
        model = self.model
        device = next(model.parameters()).device
        with eval_mode(model):
            ids = torch.tensor(prompts, device=device)  # (b, l)
            b, l = ids.shape
            cache = model.allocate_cache(b, l + settings.max_new_tokens)
            gens = []
            if settings.temperature > 0:
                for s in seeds:
                    g = torch.Generator(device=device)
                    g.manual_seed(s)
                    gens.append(g)
            logits = model(ids, cache)[:, -1]  # (b, vocab)
            new: list[list[int]] = [[] for _ in range(b)]
            done = [False] * b
            for step in range(settings.max_new_tokens):
                if settings.temperature == 0:
                    next_ids = logits.argmax(-1).tolist()
                else:
                    probs = torch.softmax(logits.float() / settings.temperature, dim=-1)
                    next_ids = [int(torch.multinomial(probs[r], 1, generator=gens[r])) if not done[r] else 0
                                for r in range(b)]
                for r, t in enumerate(next_ids):
                    if not done[r]:
                        if t in self._stop_ids:
                            done[r] = True
                        else:
                            new[r].append(t)
                if all(done) or step + 1 == settings.max_new_tokens:
                    break
                logits = model(torch.tensor(next_ids, device=device)[:, None], cache)[:, -1]
        return new


# ---------------------------------------------------------------------------------------------- transformers
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class TransformersAdapter:
    """A Hugging Face causal LM and tokenizer read from the local directory ``model_dir`` (never downloaded).

    Chats are rendered with the tokenizer's chat template when it has one (the answer is then the text up to the
    end-of-sequence token, stripped), else with :func:`render_chat` (then cut by :func:`answer_stop`). Greedy
    decoding runs in batches of ``batch_size`` left-padded prompts. Sampling is plain temperature sampling
    (``top_k=0, top_p=1``, whatever the model's generation config says) and runs one chat per ``generate`` call,
    its ``num_samples`` answers as ``num_return_sequences``, under ``torch.manual_seed(sample_seed(seed, prompt,
    0))`` inside ``torch.random.fork_rng`` (the global generator is restored): answers do not depend on the batch.
    ``name``: ``"<label>@<hash of config.json, tokenizer files and weight files' sizes and mtimes>"``.
    """

    def __init__(self, model_dir: str | os.PathLike, name: str | None = None, device: str = "cpu",
                 dtype: str | torch.dtype | None = None, batch_size: int = 8):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise ConfigError(f"model_dir: no such directory {str(path)!r}")
        if isinstance(dtype, str):
            require(dtype in _DTYPES, "dtype", f"must be one of {', '.join(_DTYPES)}, got {dtype!r}")
            dtype = _DTYPES[dtype]
        self.model_dir, self.device, self.batch_size = path.resolve(), device, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        kwargs = {"dtype": dtype} if dtype is not None else {}
        self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, **kwargs).to(device)
        self.model.eval()
        self.tokenizer.padding_side = "left"  # generation continues the right end of every row
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.label = name or path.name
        self.name = f"{self.label}@{self._fingerprint(dtype)[:12]}"

    def _fingerprint(self, dtype) -> str:
        parts: list[bytes | str] = [str(self.model_dir), str(dtype)]
        for f in sorted(self.model_dir.iterdir()):
            if f.suffix in (".json", ".jinja", ".txt", ".model") and f.stat().st_size < 50_000_000:
                parts += [f.name, f.read_bytes()]  # configs and tokenizer files: their content
            elif f.is_file():
                st = f.stat()  # weight files: too big to hash on every start
                parts += [f.name, f"{st.st_size}|{st.st_mtime_ns}"]
        return _sha(*parts)

    def prompt_text(self, messages: Sequence[Message]) -> str:
        """The prompt string of ``messages`` (chat template with a generation prompt, or :func:`render_chat`)."""
        if self.has_template:
            return self.tokenizer.apply_chat_template([m.to_dict() for m in messages], tokenize=False,
                                                      add_generation_prompt=True)
        return render_chat(messages)

    def _finish(self, text: str) -> str:
        return text.strip() if self.has_template else answer_stop(text)

    @torch.no_grad()
    def _generate(self, texts: list[str], settings: GenerationSettings, n: int) -> list[str]:
        # A chat template already holds its special tokens (e.g. <bos>); do not add them twice.
        enc = self.tokenizer(texts, return_tensors="pt", padding=True,
                             add_special_tokens=not self.has_template).to(self.device)
        sampling = settings.temperature > 0
        kwargs: dict[str, Any] = {"do_sample": sampling, "max_new_tokens": settings.max_new_tokens,
                                  "num_return_sequences": n, "pad_token_id": self.tokenizer.pad_token_id}
        if sampling:
            kwargs.update(temperature=settings.temperature, top_k=0, top_p=1.0)
        out = self.model.generate(**enc, **kwargs)[:, enc["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    def answer(self, chats: Sequence[Sequence[Message]], settings: GenerationSettings) -> list[list[str]]:
        """``settings.num_samples`` answers per chat, in input order."""
        texts = [self.prompt_text(c) for c in chats]
        if settings.temperature == 0:
            out = []
            for k in range(0, len(texts), self.batch_size):
                out += [[self._finish(a)] for a in self._generate(texts[k:k + self.batch_size], settings, 1)]
            return out
        out = []
        for text in texts:
            with torch.random.fork_rng(devices=[self.device] if str(self.device).startswith("cuda") else []):
                torch.manual_seed(sample_seed(settings.seed, text, 0))
                out.append([self._finish(a) for a in self._generate([text], settings, settings.num_samples)])
        return out


# ---------------------------------------------------------------------------------------------- endpoints
class EndpointError(RuntimeError):
    """An OpenAI-compatible endpoint failed (the message carries the URL, the status and the server's message)."""


def _server_message(resp) -> str:
    try:
        body = resp.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if err:
            return str(err)
    except ValueError:
        pass
    return resp.text[:500]


class OpenAIEndpointAdapter:
    """A model behind an OpenAI-compatible API: ``POST {base_url}/chat/completions`` with ``{"model", "messages",
    "temperature", "max_tokens", "n", "seed"}``, answers read from ``choices[*].message.content`` (stripped).

    The API key is read from the environment variable ``api_key_env`` (no header if it is unset). Connection
    errors, timeouts, 429 and 5xx are retried up to ``max_retries`` times, waiting ``backoff * 2**attempt``
    seconds; other failures raise :class:`EndpointError` at once. A server that returns fewer than ``n`` choices
    is asked again (with ``seed + 1``, ``seed + 2``, ...) until there are ``n``. Chats go out ``concurrency``
    at a time. ``name``: ``"endpoint:<base_url>|<model>"``.
    """

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60,
                 max_retries: int = 3, backoff: float = 1.0, concurrency: int = 4):
        require(isinstance(base_url, str) and base_url.startswith(("http://", "https://")), "base_url",
                f"must be an http(s) URL, got {base_url!r}")
        require(isinstance(model, str) and bool(model), "model", f"must be a non-empty string, got {model!r}")
        require(isinstance(max_retries, int) and max_retries >= 0, "max_retries", f"must be >= 0, got {max_retries!r}")
        require(isinstance(concurrency, int) and concurrency >= 1, "concurrency", f"must be >= 1, got {concurrency!r}")
        self.base_url, self.model = base_url.rstrip("/"), model
        self.api_key_env, self.timeout, self.max_retries, self.backoff = api_key_env, timeout, max_retries, backoff
        self.concurrency = concurrency
        self.name = f"endpoint:{self.base_url}|{model}"

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        import requests

        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                resp = requests.post(url, json=payload, headers=headers, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as e:
                last = f"{type(e).__name__}: {e}"
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = f"HTTP {resp.status_code}: {_server_message(resp)}"
                continue
            if resp.status_code != 200:
                raise EndpointError(f"{url}: HTTP {resp.status_code}: {_server_message(resp)}")
            try:
                return resp.json()
            except ValueError:
                raise EndpointError(f"{url}: the response is not JSON: {resp.text[:200]!r}") from None
        raise EndpointError(f"{url}: failed after {self.max_retries + 1} attempts; last error: {last}")

    def _answer_one(self, messages: Sequence[Message], settings: GenerationSettings) -> list[str]:
        answers: list[str] = []
        extra = 0
        while len(answers) < settings.num_samples:
            payload = {"model": self.model, "messages": [m.to_dict() for m in messages],
                       "temperature": settings.temperature, "max_tokens": settings.max_new_tokens,
                       "n": settings.num_samples - len(answers), "seed": settings.seed + extra}
            body = self._post(payload)
            try:
                got = [c["message"]["content"] or "" for c in body["choices"]]
            except (KeyError, TypeError):
                raise EndpointError(f"{self.base_url}/chat/completions: no choices[*].message.content in "
                                    f"{json.dumps(body)[:200]}") from None
            if not got:
                raise EndpointError(f"{self.base_url}/chat/completions: the server returned no choices")
            answers += [g.strip() for g in got]
            extra += 1
        return answers[:settings.num_samples]

    def answer(self, chats: Sequence[Sequence[Message]], settings: GenerationSettings) -> list[list[str]]:
        """``settings.num_samples`` answers per chat, in input order."""
        if self.concurrency == 1 or len(chats) <= 1:
            return [self._answer_one(c, settings) for c in chats]
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda c: self._answer_one(c, settings), chats))


# ---------------------------------------------------------------------------------------------- from a config
@dataclass
class _NvreproSpec:
    checkpoint: str
    name: str | None = None
    device: str = "cpu"
    batch_size: int = 32


@dataclass
class _TransformersSpec:
    model_dir: str
    name: str | None = None
    device: str = "cpu"
    dtype: str | None = None
    batch_size: int = 8


@dataclass
class _EndpointSpec:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 60
    max_retries: int = 3
    backoff: float = 1.0
    concurrency: int = 4


_SPECS = {"nvrepro": _NvreproSpec, "transformers": _TransformersSpec, "endpoint": _EndpointSpec}


def adapter_from_config(cfg: Mapping[str, Any]):
    """The adapter described by ``cfg``: ``{"kind": "nvrepro", "checkpoint", "name"?, "device"?, "batch_size"?}``,
    ``{"kind": "transformers", "model_dir", "name"?, "device"?, "dtype"?, "batch_size"?}`` or ``{"kind":
    "endpoint", "base_url", "model", "api_key_env"?, "timeout"?, "max_retries"?, "backoff"?, "concurrency"?}``.
    An unknown kind, an unknown key or a missing required key raises :class:`ConfigError` naming it."""
    require(isinstance(cfg, Mapping), "adapter", f"must be a mapping, got {type(cfg).__name__}")
    kind = cfg.get("kind")
    require(kind in _SPECS, "adapter.kind", f"must be one of {', '.join(ADAPTER_KINDS)}, got {kind!r}")
    given = {k: v for k, v in cfg.items() if k != "kind"}
    for f in dataclasses.fields(_SPECS[kind]):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        require(not required or f.name in given, f"adapter.{f.name}", f"required for kind {kind!r}")
    spec = dataclass_from_dict(_SPECS[kind], given, "adapter")
    if kind == "nvrepro":
        model, tokenizer = load_nvrepro_model(spec.checkpoint, spec.device)
        return NvreproAdapter(model, tokenizer, spec.name or Path(spec.checkpoint).stem, spec.batch_size)
    if kind == "transformers":
        return TransformersAdapter(spec.model_dir, spec.name, spec.device, spec.dtype, spec.batch_size)
    return OpenAIEndpointAdapter(spec.base_url, spec.model, spec.api_key_env, spec.timeout, spec.max_retries,
                                 spec.backoff, spec.concurrency)
