"""A Hugging Face `transformers.Trainer` that trains on thresher's pruned epochs.

`ThresherTrainer` changes two methods of Trainer:

- `get_train_dataloader` returns `DataLoader(train_dataset, batch_sampler=sampler,
  collate_fn=...)` with a `thresher.torch.Sampler`: each epoch is the one thresher's policy
  planned, and `len(sampler)` is that epoch's number of batches;
- `compute_loss` computes per-sample cross-entropies and returns
  `sampler.weighted_loss(per_sample)`, which books those losses for the batch they came from
  (the oldest batch the sampler yielded that has not been booked) and returns mean(w * l) with
  the policy's weights. Evaluation (model.eval()) books nothing and returns the plain mean.

The model is a tiny BERT built from a config (random weights, nothing downloaded), the text a
synthetic fortune-cookie data set made here as a `datasets.Dataset`, the tokeniser a
word-level one written here.

    HF_HUB_OFFLINE=1 PYTHONPATH=bindings/python .venv/bin/python examples/hf_trainer/hf_train.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be downloaded
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

# ---- A synthetic text classification data set -----------------------------------------------

TOPICS = {
    "love": "heart love romance kiss partner smile friend wedding sweetheart admirer embrace "
            "affection".split(),
    "money": "fortune money wealth gold coins riches salary bonus treasure investment profit "
             "jackpot".split(),
    "travel": "journey travel road voyage mountain ocean ticket passport island train horizon "
              "adventure".split(),
    "health": "health strength rest sleep vigour healing energy garden breath medicine walk "
              "balance".split(),
}
LABELS = list(TOPICS)
FILLER = ("you will soon find a the great new in your future good luck comes to those who "
          "wait today tomorrow and with much joy brings an unexpected").split()


def make_dataset(n: int, seed: int = 0, noise: float = 0.05, distract: float = 0.3):
    """`n` fortune-cookie sentences as a `datasets.Dataset` with columns text and label
    (0..3, by topic): 2-4 topic words among 6-10 filler words; with probability `distract` one
    word of another topic, and a fraction `noise` of labels replaced by a random one (the
    samples that stay hard)."""
    import datasets

    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.randrange(len(LABELS))
        words = [rng.choice(FILLER) for _ in range(rng.randint(6, 10))]
        words += [rng.choice(TOPICS[LABELS[label]]) for _ in range(rng.randint(2, 4))]
        if rng.random() < distract:
            other = rng.choice([t for i, t in enumerate(LABELS) if i != label])
            words.append(rng.choice(TOPICS[other]))
        rng.shuffle(words)
        if rng.random() < noise:
            label = rng.randrange(len(LABELS))
        texts.append(" ".join(words))
        labels.append(label)
    return datasets.Dataset.from_dict({"text": texts, "label": labels})


class WordTokenizer:
    """Whitespace words to ids: [PAD] = 0, [UNK] = 1, [CLS] = 2 first, then the words of the
    texts it was built from, in order of first appearance."""

    PAD, UNK, CLS = 0, 1, 2

    def __init__(self, texts, max_len: int = 16):
        self.vocab = {"[PAD]": self.PAD, "[UNK]": self.UNK, "[CLS]": self.CLS}
        for text in texts:
            for word in text.split():
                self.vocab.setdefault(word, len(self.vocab))
        self.max_len = max_len

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        ids = [self.CLS] + [self.vocab.get(w, self.UNK) for w in text.split()]
        return ids[: self.max_len]

    def __call__(self, batch: dict) -> dict:
        # For Dataset.map(batched=True): input_ids (unpadded) per text.
        return {"input_ids": [self.encode(t) for t in batch["text"]]}


def collate(rows: list[dict]) -> dict:
    """Pads a list of dataset rows to the longest: input_ids, attention_mask, labels (and the
    rows' `id` column as `ids`, when there is one)."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r["input_ids"])] = torch.as_tensor(r["input_ids"])
        mask[i, : len(r["input_ids"])] = 1
    batch = {"input_ids": ids, "attention_mask": mask,
             "labels": torch.as_tensor([r["label"] for r in rows], dtype=torch.long)}
    if "id" in rows[0]:
        batch["ids"] = torch.as_tensor([r["id"] for r in rows], dtype=torch.long)
    return batch


def make_model(vocab_size: int, num_labels: int = len(LABELS)):
    """A 2-layer BERT with tiny dimensions and random weights, from a config (no download)."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=32,
                        num_labels=num_labels, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)


# ---- The Trainer -------------------------------------------------------------------------------


def _trainer_class():
    from transformers import Trainer

    class ThresherTrainer(Trainer):
        """Trainer whose training epochs come from a thresher.torch.Sampler and whose training
        loss is the sampler's weighted loss, with per-sample losses fed back."""

        def __init__(self, *args, sampler, **kwargs):
            super().__init__(*args, **kwargs)
            self.sampler = sampler
            self.booked_batches = 0
            self.epoch_log = None  # an EpochLog callback: compute_loss records the ids there

        def get_train_dataloader(self) -> DataLoader:
            # Not passed through accelerator.prepare: thresher already shards by rank (config
            # rank/world_size), and accelerate would shard the batch sampler a second time.
            # Trainer moves each batch to args.device itself.
            return DataLoader(self.train_dataset, batch_sampler=self.sampler,
                              collate_fn=self.data_collator,
                              num_workers=self.args.dataloader_num_workers)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"]
            ids = inputs.get("ids")  # not a model input; the dataset's row numbers
            outputs = model(input_ids=inputs["input_ids"],
                            attention_mask=inputs["attention_mask"])
            per_sample = F.cross_entropy(outputs.logits, labels, reduction="none")
            if model.training:
                # Books the losses for the batch they came from (the oldest the sampler handed
                # out and nobody booked; with ids, checked to be that batch's); mean(w * l).
                loss = self.sampler.weighted_loss(per_sample, ids=ids)
                self.booked_batches += 1
                if self.epoch_log is not None and ids is not None:
                    self.epoch_log.epochs[-1]["ids"].extend(ids.tolist())
            else:
                loss = per_sample.mean()
            return (loss, outputs) if return_outputs else loss

    return ThresherTrainer


def _epoch_log_callback(sampler, log):
    from transformers import TrainerCallback

    class EpochLog(TrainerCallback):
        """Per epoch: the sampler's length when the epoch begins (its plan) and its report when
        it ends."""

        def __init__(self):
            self.epochs: list[dict] = []

        def on_epoch_begin(self, args, state, control, **kwargs):
            # len(sampler) is the coming epoch's batches, known before its first batch.
            self.epochs.append({"len": len(sampler), "ids": [], "t0": time.perf_counter()})

        def on_epoch_end(self, args, state, control, **kwargs):
            rec = self.epochs[-1]
            rec["report"] = dict(sampler.report())
            rec["seconds"] = time.perf_counter() - rec.pop("t0")
            r = rec["report"]
            log(f"epoch {r['epoch']}: {r['batches']} batches, {r['samples']} of "
                f"{r['dataset_len']} samples (prune {r['prune_fraction']:.3f}, mean weight "
                f"{r['mean_weight']:.3f}), {rec['seconds']:.1f} s")

    return EpochLog()


def train(out_dir: str, n_train: int = 2000, n_eval: int = 500, epochs: int = 2,
          batch_size: int = 32, seed: int = 0, prune: float = 0.5, anneal: float = 1.0,
          lr: float = 3e-3, log=print) -> dict:
    """Trains the tiny BERT for `epochs` epochs with InfoBatch (prune r, anneal δ; δ = 1 prunes
    every epoch after the first). Returns the sampler's reports per epoch, the sampler's
    length at each epoch's start, the evaluation loss before and after, the Trainer's log."""
    import datasets
    import thresher.torch
    from transformers import TrainingArguments, set_seed

    set_seed(seed)
    datasets.disable_progress_bars()
    train_set = make_dataset(n_train, seed)
    eval_set = make_dataset(n_eval, seed + 1, noise=0.0)
    tok = WordTokenizer(train_set["text"])
    train_set = train_set.map(tok, batched=True).add_column("id", list(range(n_train)))
    eval_set = eval_set.map(tok, batched=True)

    sampler = thresher.torch.Sampler(
        len(train_set), batch_size=batch_size, seed=seed,
        policy={"kind": "infobatch", "prune": prune, "anneal": anneal, "epochs": epochs})
    args = TrainingArguments(
        output_dir=out_dir, num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=256, learning_rate=lr, weight_decay=0.0,
        # Trainer sizes its schedule from the first epoch's length; pruned epochs are shorter,
        # so a decaying schedule would stop part-way down. Constant sidesteps it.
        lr_scheduler_type="constant", logging_steps=10, eval_strategy="no",
        save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=seed,
        remove_unused_columns=False, dataloader_num_workers=0)
    callback = _epoch_log_callback(sampler, log)
    trainer = _trainer_class()(
        model=make_model(len(tok)), args=args, train_dataset=train_set, eval_dataset=eval_set,
        data_collator=collate, sampler=sampler, callbacks=[callback])
    trainer.epoch_log = callback

    before = trainer.evaluate()["eval_loss"]
    log(f"eval loss before training: {before:.3f}")
    t0 = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - t0
    after = trainer.evaluate()["eval_loss"]
    log(f"eval loss after training: {after:.3f} ({seconds:.1f} s training)")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "epochs": callback.epochs, "eval_before": before, "eval_after": after,
        "global_step": output.global_step, "booked_batches": trainer.booked_batches,
        "train_losses": losses, "seconds": seconds, "n_train": len(train_set),
        "pending": sampler.num_pending,  # batches handed out whose losses were never booked
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--prune", type=float, default=0.5)
    p.add_argument("--anneal", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="thresher-hf-") as out:
        result = train(out, args.samples, epochs=args.epochs, batch_size=args.batch_size,
                       seed=args.seed, prune=args.prune, anneal=args.anneal)
    print(json.dumps([e["report"] for e in result["epochs"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
