"""Token rows of the RankRAG blends, the world's tokenizer, and the datamodule ``nvrepro fit`` trains on.

Every row of a blend (:mod:`nvrepro.rankrag.blend`) is ``(question, context, answer, task)``; it
becomes the token ids of ``render_prompt(question, context) + target_text(answer) + <eos>``
with labels on the answer and ``<eos>`` only (RankRAG's loss: arXiv 2407.02485 Sec. 4.1 trains on
the response; a prompt token never carries a label). Rows are padded on the right per batch
(labels ``-100`` there): in a causal model padding after a position cannot change it.

The tokenizer is a byte-level BPE (HF ``tokenizers``, :func:`~nvrepro.core.data.tokenizers.build_tokenizer`)
trained on the world's passages, the training questions and one rendered example of every task,
so template words are whole tokens; the ranking labels are added as tokens of their own. It does not depend on the blend's
ranking share: every arm of an experiment shares one vocabulary, and the ranking labels
``" True"`` / ``" False"`` must each be one token (:func:`label_token_ids`, checked on build).
"""

from __future__ import annotations

from typing import Sequence

from torch.utils.data import DataLoader

from nvrepro.core.data.answer_rows import EncodedRow, EncodedRows, answer_only_row, rows_loader
from nvrepro.core.data.datamodules import _TrainValDataModule
from nvrepro.core.data.synthetic import IGNORE_INDEX
from nvrepro.core.data.tokenizers import build_tokenizer
from nvrepro.core.tooling.validation import ConfigError, require, require_positive_int
from nvrepro.rankrag.prompts import IRRELEVANT, RELEVANT, render_prompt, target_text

IGNORE = IGNORE_INDEX  # labels on prompt and padding positions
STAGES = ("instruction", "blend")


def label_token_ids(tokenizer) -> tuple[int, int]:
    """Ids of the single tokens :func:`target_text` makes of :data:`RELEVANT` and :data:`IRRELEVANT`;
    ``ConfigError`` when the tokenizer splits either (a model cannot then score relevance by one
    next-token probability)."""
    ids = []
    for label in (RELEVANT, IRRELEVANT):
        tokens = tokenizer.encode(target_text(label))
        if len(tokens) != 1:
            raise ConfigError(f"tokenizer: {target_text(label)!r} is {len(tokens)} tokens, not one; the "
                              f"model has no {label!r} token to score relevance with")
        ids.append(tokens[0])
    return ids[0], ids[1]


def tokenizer_texts(world, seed: int = 0) -> list[str]:
    """What the world's BPE learns from: every passage, the training questions, and a small blend
    rendered in full (so the template words, the ranking labels and the instructions are seen)."""
    from nvrepro.rankrag.blend import build_blend, build_instructions

    texts = [p.text for p in world.passages] + [q.text for q in world.questions["train"]]
    for ds in (build_blend(world, ranking_share=0.5, size=400, seed=seed), build_instructions(200, seed, world)):
        texts += [render_prompt(r["question"], r["context"]) + target_text(r["answer"]) for r in ds]
    return texts


def world_tokenizer(world, vocab_size: int = 2048, seed: int = 0):
    """The BPE of :func:`tokenizer_texts` (cached on disk by its texts) with the two ranking labels
    (``" True"``, ``" False"``) added as whole tokens: BPE merges them only when the vocabulary
    has room, and relevance must be one next-token probability."""
    from tokenizers import AddedToken

    tokenizer = build_tokenizer("bpe", tokenizer_texts(world, seed), vocab_size=vocab_size, seed=seed)
    tokenizer.backend.add_tokens([AddedToken(target_text(label), normalized=False)
                                  for label in (RELEVANT, IRRELEVANT)])
    label_token_ids(tokenizer)
    return tokenizer


def encode_prompt(tokenizer, question: str, context: Sequence[str] = ()) -> list[int]:
    """Token ids of ``render_prompt(question, context)``."""
    return tokenizer.encode(render_prompt(question, context))


def encode_row(tokenizer, question: str, context: Sequence[str], answer: str, max_len: int) -> EncodedRow:
    """The tokens and answer-only labels of one row; ``ConfigError`` naming ``max_len`` if too long."""
    answer_ids = tokenizer.encode(target_text(answer)) + [tokenizer.eos_id]
    return answer_only_row(encode_prompt(tokenizer, question, context), answer_ids, max_len,
                           what=f"the row of question {question[:60]!r} (raise max_len or shorten the context)")


def encode_blend(ds, tokenizer, max_len: int) -> EncodedRows:
    """Every row of a blend ``Dataset`` (columns question, context, answer, task) encoded."""
    rows = [encode_row(tokenizer, r["question"], r["context"], r["answer"], max_len) for r in ds]
    return EncodedRows(rows, ds["task"])


def load_blend(path: str, split: str):
    """The ``split`` of a blend saved with ``DatasetDict.save_to_disk`` at ``path``; ``ConfigError``
    naming ``blend_path`` when the folder, the split or a column is missing."""
    import datasets

    from nvrepro.rankrag.blend import FEATURES

    try:
        data = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise ConfigError(f"blend_path: no dataset saved with save_to_disk at {path}") from None
    if not isinstance(data, datasets.DatasetDict) or split not in data:
        raise ConfigError(f"blend_path: {path} needs a DatasetDict with a {split!r} split")
    missing = set(FEATURES) - set(data[split].column_names)
    if missing:
        raise ConfigError(f"blend_path: the {split!r} split of {path} lacks columns {sorted(missing)}")
    return data[split]


class RankRAGDataModule(_TrainValDataModule):
    """The training data of one RankRAG stage on the synthetic world.

    ``stage="instruction"``: stage I, general instructions (no context); ``stage="blend"``: stage
    II, the blend with ``ranking_share`` of ranking rows (0: a ChatQA-like generator's data; 1: a
    dedicated re-ranker's). Training rows come from the world's train people, validation rows
    (``val_size``) from its test people. World fields (``num_people``, ``num_companies``,
    ``two_hop_fraction``, ``test_fraction``, ``world_seed``) name the world every arm shares;
    ``seed`` draws the rows and shuffles them.

    Full scale (the switch): ``blend_path``, a ``datasets.save_to_disk`` folder with ``train`` and
    ``validation`` splits of the same four columns (the paper's stage I or stage II blend, prepared
    offline), replaces the world; ``tokenizer_path`` (a pretrained model's ``tokenizer.json``, with
    ``eos_token`` and optionally ``pad_token``) replaces the world's BPE. The ranking labels must
    be single tokens of it.
    """

    def __init__(self, stage: str = "blend", ranking_share: float = 0.3, size: int = 8000, val_size: int = 512,
                 context_size: int = 4, num_people: int = 300, num_companies: int = 40,
                 two_hop_fraction: float = 0.2, test_fraction: float = 0.2, world_seed: int = 0,
                 vocab_size: int = 2048, max_len: int = 256, batch_size: int = 16, seed: int = 0,
                 num_workers: int = 0, blend_path: str | None = None, tokenizer_path: str | None = None,
                 eos_token: str | None = None, pad_token: str | None = None):
        super().__init__()
        require(stage in STAGES, "stage", f"must be one of {STAGES}, got {stage!r}")
        require(isinstance(ranking_share, (int, float)) and 0.0 <= ranking_share <= 1.0, "ranking_share",
                f"must be in [0, 1], got {ranking_share!r}")
        for value, name in ((size, "size"), (val_size, "val_size"), (context_size, "context_size"),
                            (num_people, "num_people"), (num_companies, "num_companies"),
                            (vocab_size, "vocab_size"), (max_len, "max_len"), (batch_size, "batch_size")):
            require_positive_int(value, name)
        self.save_hyperparameters()
        self.stage, self.ranking_share, self.size, self.val_size = stage, float(ranking_share), size, val_size
        self.context_size, self.max_len, self.batch_size, self.seed, self.num_workers = (
            context_size, max_len, batch_size, seed, num_workers)
        self.world_args = dict(num_people=num_people, num_companies=num_companies,
                               two_hop_fraction=two_hop_fraction, test_fraction=test_fraction, seed=world_seed)
        self.tokenizer_vocab = vocab_size
        if (tokenizer_path is None) != (eos_token is None):
            raise ConfigError("eos_token: give it exactly when tokenizer_path is given (the pretrained "
                              "tokenizer's end-of-answer token)")
        self.blend_path, self.tokenizer_path = blend_path, tokenizer_path
        self.special_tokens = dict(eos=eos_token, pad=pad_token)
        self._world = self._tokenizer = None

    @property
    def world(self):
        if self._world is None:
            from nvrepro.rankrag.world import build_world

            self._world = build_world(**self.world_args)
        return self._world

    @property
    def tokenizer(self):
        if self._tokenizer is None and self.tokenizer_path is not None:
            from nvrepro.core.data.tokenizers import PretrainedTokenizer

            self._tokenizer = PretrainedTokenizer(self.tokenizer_path, **self.special_tokens)
            label_token_ids(self._tokenizer)
        if self._tokenizer is None:
            self._tokenizer = world_tokenizer(self.world, self.tokenizer_vocab, self.world_args["seed"])
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def blend(self, split: str, size: int, seed: int):
        from nvrepro.rankrag.blend import build_blend, build_instructions

        if self.blend_path is not None:
            return load_blend(self.blend_path, split)

        if self.stage == "instruction":
            return build_instructions(size, seed, self.world)
        return build_blend(self.world, ranking_share=self.ranking_share, size=size, context_size=self.context_size,
                           seed=seed, split=split)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = encode_blend(self.blend("train", self.size, self.seed), self.tokenizer, self.max_len)
        if stage in (None, "fit", "validate", "test") and self.val_dataset is None:
            # validation rows: the saved blend's validation split; the world's test people for stage
            # II (unseen in training); fresh instructions (another seed) for stage I
            split = "validation" if self.blend_path else "test" if self.stage == "blend" else "train"
            self.val_dataset = encode_blend(self.blend(split, self.val_size, self.seed + 1), self.tokenizer,
                                            self.max_len)

    def _rows_loader(self, ds, shuffle: bool) -> DataLoader:
        return rows_loader(ds, self.batch_size, shuffle, self.seed, self.tokenizer.pad_id, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._rows_loader(self.train_dataset, True)

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return self._rows_loader(self.val_dataset, False)
