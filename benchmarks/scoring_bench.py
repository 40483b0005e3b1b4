"""Scoring throughput: the naive transformers loop against Stormvarsel's scoring stage.

Both score the same tweet-length, mixed-language texts with the same encoder and head (the model
that ``stormvarsel models install`` prepares for the configured head: the shipped one is cut to
8 layers, so the naive loop runs those 8 layers too):

  (a) naive: AutoModel + torch, texts in arrival order, fixed batches of 32 padded to the longest;
  (b) stage: what the worker runs (language identification, length bucketing into small
      batches run one per core, ONNX Runtime int8 encoder, numpy head), through the same code
      path as the scoring agent.

Each runs in its own process so peak memory (max RSS) is measured separately. Run:

    .venv/bin/python benchmarks/scoring_bench.py [--texts 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment"


def sample_texts(n: int, seed: int = 5) -> list[str]:
    """Tweet-length texts in English, Norwegian and Swedish (the shared sets, else synthetic)."""
    rng = random.Random(seed)  # noqa: S311 (sampling, not security)
    texts: list[str] = []
    if SHARED.exists():
        with (SHARED / "airline_tweets.csv").open(encoding="utf-8") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
        texts += [
            row["text"]
            for row in json.loads((SHARED / "norec_sentence_3class_dev.json").read_text())
        ]
        with (SHARED / "swedish_reviews_small.csv").open(encoding="utf-8") as handle:
            texts += [row["text"][:280] for row in csv.DictReader(handle)]
    else:
        words = ["strøm", "faktura", "kundeservice", "flight", "delayed", "väntat", "telefonkö"]
        texts = [" ".join(rng.choices(words, k=rng.randint(4, 30))) for _ in range(n)]
    rng.shuffle(texts)
    return texts[:n]


def run_naive(texts: list[str], threads: int) -> dict[str, float | str]:
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from streams.sentiment.e5_scorer import SHIPPED_HEAD, Head
    from streams.sentiment.factory import install_e5
    from streams.settings import Settings

    torch.set_num_threads(threads)
    model_dir = install_e5(Settings())
    head = Head.load(SHIPPED_HEAD)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    started = time.perf_counter()
    for i in range(0, len(texts), 32):
        batch = tokenizer(
            ["query: " + t for t in texts[i : i + 32]],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        with torch.inference_mode():
            hidden = model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = torch.cat([(hidden[j] * mask).sum(1) / mask.sum(1) for j in head.layers], 1)
        head.probabilities(pooled.numpy().astype(np.float32))
    elapsed = time.perf_counter() - started
    return {"mentions_per_s": len(texts) / elapsed, "seconds": elapsed}


def run_stage(texts: list[str], threads: int) -> dict[str, float | str]:
    from streams.agents.score import BatchScorer
    from streams.sentiment.factory import load_scorer
    from streams.settings import Settings

    settings = Settings(sentiment_threads=threads)
    stage = BatchScorer(lambda: load_scorer(settings))
    stage.warm_up()
    records = [
        json.dumps({"id": str(i), "text": t, "created_at_ms": 0, "brand": "b"}).encode()
        for i, t in enumerate(texts)
    ]
    started = time.perf_counter()
    size = settings.sentiment_batch_size  # the agent's default micro-batch
    for i in range(0, len(records), size):
        stage.run(records[i : i + size])
    elapsed = time.perf_counter() - started
    return {"mentions_per_s": len(texts) / elapsed, "seconds": elapsed, "model": stage.warm_up()}


def child(mode: str, n: int, threads: int) -> None:
    texts = sample_texts(n)
    result = run_naive(texts, threads) if mode == "naive" else run_stage(texts, threads)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=["naive", "stage"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.texts, args.threads)
        return
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())  # other work on the machine skews it
    results = {}
    for mode in ("naive", "stage"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--texts",
                str(args.texts),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    texts = sample_texts(args.texts)  # the children's texts: at most what the shared sets hold
    mean_chars = sum(len(t) for t in texts) / len(texts)
    asked = f" (of {args.texts} asked: all the shared sets hold)" if len(texts) < args.texts else ""
    print(
        f"{len(texts)} texts{asked} (mean {mean_chars:.0f} chars, en/nb/sv), {args.threads} threads"
    )
    print(f"model: {results['stage'].get('model', '?')} (both runs); load average before: {load}")
    for mode, label in (("naive", "(a) naive transformers loop"), ("stage", "(b) scoring stage")):
        r = results[mode]
        rate, rss = r["mentions_per_s"], r["max_rss_mb"]
        print(f"{label:<30} {rate:8.1f} mentions/s   peak RSS {rss:7.0f} MB")
    ratio = results["stage"]["mentions_per_s"] / results["naive"]["mentions_per_s"]
    print(f"speed-up (b)/(a): {ratio:.1f}x")


if __name__ == "__main__":
    main()
