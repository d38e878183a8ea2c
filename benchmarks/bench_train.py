"""Benchmark training throughput: our batching (dynamic padding + length-grouped batches) against the seed's
(every batch padded to 256 tokens, random order), same model (MiniLM), same rows, same Trainer.

    .venv/bin/python prepare_data.py --sources sources/public_corpus.toml --raw-dir ../shared/datasets \\
        --output /tmp/public_corpus
    .venv/bin/python benchmarks/bench_train.py --data /tmp/public_corpus [--rows 512] [--batch-size 16]

Each mode trains one pass over the same random sample of training rows in its own subprocess, so its peak
memory (RSS) is its own. Prints samples/s per mode, the ratio, and peak memory. The CPU may be shared: the
load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: import the repo's package

SEED_PAD_LENGTH = 256  # the seed tokenized with padding="max_length", max_length=256


def run_mode(mode: str, data: Path, rows: int, batch_size: int, model_name: str) -> dict[str, float]:
    """Train one pass over ``rows`` training rows with ``mode`` = "ours" or "seed"; returns samples/s."""
    import tempfile

    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainingArguments

    from cockatoo_ml.data.contract import load_processed
    from cockatoo_ml.registry.models import resolve_base_model
    from cockatoo_ml.training.loss import MultiLabelLoss, pos_weight_from_known
    from cockatoo_ml.training.run import MultiLabelTrainer
    from cockatoo_ml.training.tokenize import LENGTH_COLUMN, MultiLabelCollator, tokenize_split

    dataset, labels = load_processed(data)
    train = dataset["train"].shuffle(seed=0).select(range(min(rows, len(dataset["train"]))))
    base = resolve_base_model(model_name)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenized = tokenize_split(train, tokenizer, max_length=SEED_PAD_LENGTH, desc=mode)
    ours = mode == "ours"
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(labels), problem_type="multi_label_classification"
    )
    with tempfile.TemporaryDirectory() as work:
        args = TrainingArguments(
            output_dir=work,
            per_device_train_batch_size=batch_size,
            num_train_epochs=1,
            learning_rate=5e-5,
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            logging_strategy="no",
            disable_tqdm=True,
            seed=0,
            remove_unused_columns=False,
            label_names=["labels", "label_mask"],
            train_sampling_strategy="group_by_length" if ours else "random",
            length_column_name=LENGTH_COLUMN,
            dataloader_pin_memory=False,
        )
        trainer = MultiLabelTrainer(
            model=model,
            args=args,
            train_dataset=tokenized,
            processing_class=tokenizer,
            data_collator=MultiLabelCollator(tokenizer, pad_to_length=None if ours else SEED_PAD_LENGTH),
            loss_fn=MultiLabelLoss("bce", pos_weight_from_known(train["labels"], train["label_mask"])),
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    lengths = tokenized[LENGTH_COLUMN]
    return {
        "rows": len(tokenized),
        "seconds": seconds,
        "samples_per_s": len(tokenized) / seconds,
        "mean_tokens": sum(lengths) / len(lengths),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/processed_text"), help="prepared dataset folder")
    parser.add_argument("--rows", type=int, default=512, help="training rows per mode (one pass)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="minilm", help="base model (preset, Hub id or folder)")
    parser.add_argument("--mode", choices=["ours", "seed"], help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()

    if args.mode:
        print(json.dumps(run_mode(args.mode, args.data, args.rows, args.batch_size, args.model)))
        return 0

    if not (args.data / "cockatoo_meta.json").is_file():
        print(f"error: no prepared dataset at {args.data}; run prepare_data.py first (see the docstring)", file=sys.stderr)
        return 2
    results = {}
    for mode in ("seed", "ours"):
        load = os.getloadavg()[0]
        child = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--data", str(args.data), "--rows", str(args.rows),
             "--batch-size", str(args.batch_size), "--model", args.model],
            capture_output=True, text=True, check=False,
        )
        if child.returncode != 0:
            print(child.stderr[-3000:], file=sys.stderr)
            return child.returncode
        results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
        results[mode]["load_before"] = load
        r = results[mode]
        print(
            f"{mode:>4}: {r['rows']} rows in {r['seconds']:.1f} s = {r['samples_per_s']:.1f} samples/s, "
            f"{'mean ' + format(r['mean_tokens'], '.0f') if mode == 'ours' else SEED_PAD_LENGTH} tokens/row, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB (load avg {load:.1f}, {os.cpu_count()} CPUs)"
        )
    ratio = results["ours"]["samples_per_s"] / results["seed"]["samples_per_s"]
    print(f"speed-up (ours / seed): {ratio:.2f}x  [batch {args.batch_size}, model {args.model}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
