"""`sentiment-evaluator-py`: score a sentiment model on a dataset split.

The Python port of guests/rust/plugins/evaluator, written the way a
Transformer Lab script is (`from lab import lab`, a main function). Same
kind, parameters and outputs, so it evaluates the Rust trainer's model and
writes the same predictions table:

It opens a `labhost-logreg-v1` model (a directory holding `model.json`:
{"format", "vocab": {word: weight}, "bias", "tokenizer"}) and a dataset
(`data.jsonl`, one {"text", "label", "split"} per line), predicts every row
of the chosen split, and stores the predictions as the eval table
`predictions` (CSV or JSON lines): input text, predicted label, expected
label, score 1/0 for right/wrong, and the probability as an extra column.
Accuracy, precision, recall and F1 (positive class = 1) become the job's
scores.
"""

import json
import math
import os

from lab import lab


def tokenize(text):
    """The `lowercase-alnum` tokenizer: lowercase, split on anything that is
    not alphanumeric."""
    tokens, current = [], []
    for c in text.lower():
        if c.isalnum():
            current.append(c)
        elif current:
            tokens.append("".join(current))
            current = []
    if current:
        tokens.append("".join(current))
    return tokens


class Model:
    """A `labhost-logreg-v1` model."""

    def __init__(self, name):
        path = lab.get_model_path(name)
        if os.path.isdir(path):
            path = os.path.join(path, "model.json")
        try:
            with open(path) as f:
                model = json.load(f)
        except OSError as e:
            raise lab.Error(f"cannot read {path}: {e}") from None
        except ValueError as e:
            raise lab.Error(f"{path} is not a logistic regression model: {e}") from None
        if not isinstance(model, dict) or not {"format", "vocab", "bias", "tokenizer"} <= model.keys():
            raise lab.Error(f"{path} is not a logistic regression model")
        if model["format"] != "labhost-logreg-v1":
            raise lab.Error(f"unsupported model format {model['format']!r}")
        if model["tokenizer"] != "lowercase-alnum":
            raise lab.Error(f"unsupported tokenizer {model['tokenizer']!r}")
        self.vocab = model["vocab"]
        self.bias = float(model["bias"])

    def probability(self, text):
        """The sigmoid of the bias plus the weight of every token occurrence
        (unknown tokens weigh 0). Summed left to right like the Rust plugin
        (Python's sum() of floats is compensated, so not bit-identical)."""
        total = 0.0
        for token in tokenize(text):
            weight = self.vocab.get(token)
            if weight is not None:
                total += weight
        return 1.0 / (1.0 + math.exp(-(self.bias + total)))


def load_split(name, split):
    """The rows of `split` in dataset `name` (a name or id)."""
    path = os.path.join(lab.open_dataset(name), "data.jsonl")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise lab.Error(f"cannot read {path}: {e}") from None
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, label, row_split = row["text"], row["label"], row["split"]
        except (ValueError, KeyError, TypeError) as e:
            raise lab.Error(f"{path} line {i + 1}: {e}") from None
        if type(label) is not int or label not in (0, 1):
            raise lab.Error(f"{path} line {i + 1}: label must be 0 or 1")
        if row_split == split:
            rows.append((text, label))
    return rows


def ratio(numerator, denominator):
    return numerator / denominator if denominator else 0.0


def main():
    lab.init()
    config = lab.get_config()
    if config["format"] not in ("csv", "jsonl"):
        raise lab.Error(f'format must be "csv" or "jsonl", not {json.dumps(config["format"])}')

    lab.update_progress(0, "loading")
    model = Model(config["model"])
    rows = load_split(config["dataset"], config["split"])
    if not rows:
        raise lab.Error(f'dataset {config["dataset"]} has no rows in split '
                        f'{json.dumps(config["split"])}')
    lab.log(f"evaluating model {config['model']} ({len(model.vocab)} words) on {len(rows)} "
            f"{json.dumps(config['split'])} rows of dataset {config['dataset']}")

    lab.update_progress(30, "predicting")
    results, tp, fp, tn, fn = [], 0, 0, 0, 0
    for text, label in rows:
        probability = model.probability(text)
        predicted = int(probability >= 0.5)
        tp += predicted == 1 and label == 1
        fp += predicted == 1 and label == 0
        fn += predicted == 0 and label == 1
        tn += predicted == 0 and label == 0
        results.append({"input": text, "output": str(predicted), "expected_output": str(label),
                        "score": 1.0 if predicted == label else 0.0,
                        "probability": probability})

    lab.update_progress(80, "saving predictions")
    summary = lab.save_artifact(results, name=f"predictions.{config['format']}", type="eval")
    lab.log(f"saved {summary.count} predictions (mean score {summary.mean_score:.3f})")

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    scores = {
        "accuracy": ratio(tp + tn, tp + fp + tn + fn),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0,
    }
    for name, value in scores.items():
        lab.log_metric(name, value)
    lab.update_progress(100, "done")
    lab.finish(f"accuracy {scores['accuracy']:.3f} on {len(rows)} {json.dumps(config['split'])} rows",
               score=scores)


WitWorld = lab.export(
    main,
    name="sentiment-evaluator-py",
    kind="evaluator",
    description="Evaluates a logistic regression sentiment model on a dataset split",
    params=[
        lab.param("model", "text", "sentiment-logreg", "Model to evaluate (name or id)"),
        lab.param("dataset", "text", "sentiment", "Dataset to evaluate on (name or id)"),
        lab.param("split", "text", "test", "Dataset split to evaluate"),
        lab.param("format", "text", "csv", "Format of the predictions table: csv or jsonl"),
    ],
)
