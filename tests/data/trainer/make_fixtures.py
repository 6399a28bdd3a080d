"""Write the Hugging Face Trainer fixtures of tests/test_trainer_reader.py with transformers itself.

Run in a virtual environment that has transformers and torch (transformers 5.25 was used):

    HF_HUB_OFFLINE=1 python tests/data/trainer/make_fixtures.py [zen] [memorise]

A 2-layer GPT-2 with a character vocabulary (every character of the Zen of Python, under 100
symbols) is trained from scratch with ``Trainer``, evaluated every 10 steps on 48-character
windows of standard-library docstrings. Two runs, one folder each:

- ``zen/``: 60 steps on overlapping 48-character windows of the Zen; the eval loss is best at
  step 10 and rises after, while the training loss keeps falling (over-fitting).
- ``memorise/``: 150 steps at a constant learning rate on just 2 windows of the Zen: the
  training loss goes to nearly 0 (memorisation) while the eval loss climbs.

The files kept are the ones Trainer writes: ``trainer_state.json`` (its ``log_history``) and ``eval_results.json``
(``trainer.save_metrics("eval", ...)``). Timing fields (``*_runtime``, ``*_per_second``,
``total_flos``) are replaced by 0 so that regenerating changes only what the model changes.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for lm_ngram
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from lm_ngram import held_out_documents, zen_of_python  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments  # noqa: E402

WINDOW = 48


class Windows(torch.utils.data.Dataset):
    """Fixed-length character windows of a text, as token ids (labels = inputs, shifted by the model)."""

    def __init__(self, text: str, index: dict[str, int], stride: int):
        ids = [index.get(c, 0) for c in text]
        self.items = [ids[i:i + WINDOW] for i in range(0, len(ids) - WINDOW, stride)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        ids = torch.tensor(self.items[i])
        return {"input_ids": ids, "labels": ids.clone()}


RUNS = {"zen": dict(steps=60, stride=8, windows=None, schedule="linear"),
        "memorise": dict(steps=150, stride=WINDOW, windows=2, schedule="constant")}


def main(names: list[str]) -> None:
    for name in names or list(RUNS):
        train(name, **RUNS[name])


def train(name: str, steps: int, stride: int, windows: int | None, schedule: str) -> None:
    torch.manual_seed(0)
    zen = zen_of_python()
    held_out = " ".join(held_out_documents().values())[:3000]
    vocab = ["<unk>"] + sorted(set(zen))
    index = {c: i for i, c in enumerate(vocab)}
    config = GPT2Config(vocab_size=len(vocab), n_positions=WINDOW, n_embd=64, n_layer=2, n_head=2,
                        bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    with tempfile.TemporaryDirectory() as tmp:
        train_set = Windows(zen, index, stride)
        train_set.items = train_set.items[:windows]
        args = TrainingArguments(
            output_dir=tmp, max_steps=steps, per_device_train_batch_size=16, per_device_eval_batch_size=16,
            learning_rate=3e-3, lr_scheduler_type=schedule, warmup_steps=5, logging_steps=5,
            eval_strategy="steps", eval_steps=10,
            save_strategy="no", report_to=[], seed=0, data_seed=0, use_cpu=True, disable_tqdm=True,
            dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=train_set,
                          eval_dataset=Windows(held_out, index, WINDOW))
        trainer.train()
        metrics = trainer.evaluate()
        trainer.save_metrics("eval", metrics)
        trainer.save_state()
        for file in ("trainer_state.json", "eval_results.json"):
            data = json.loads((Path(tmp) / file).read_text())
            (HERE / name).mkdir(exist_ok=True)
            (HERE / name / file).write_text(json.dumps(scrub(data), indent=2, sort_keys=True) + "\n")


def scrub(value):
    """Zero the wall-clock fields, which change on every run."""
    if isinstance(value, dict):
        return {k: (0 if k.endswith(("_runtime", "_per_second")) or k == "total_flos" else scrub(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


if __name__ == "__main__":
    main(sys.argv[1:])
