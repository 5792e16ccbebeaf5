"""Train the demo's real model and write it, with its data, for labhost.

scikit-learn's bundled digits data (1,797 8x8 images of handwritten digits,
shipped inside the package: nothing is downloaded) is split 75/25 with a
fixed seed; a small MLP (64 -> 64 ReLU -> 10) is trained on the first part
and exported to ONNX with skl2onnx (no ZipMap: plain `label` and
`probabilities` tensors). Written to OUT_DIR:

  digits-mlp.onnx   the model (input `input`: float32 [N, 64])
  digits.jsonl      every image: {"pixels": [64 numbers 0-16], "label": d,
                    "split": "train" | "test"}
  digits.json       what was built: sizes, the test accuracy scikit-learn
                    measured (the plugin's score must match it)

Usage: python digits.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    x, y = load_digits(return_X_y=True)
    idx = np.arange(len(y))
    train, test = train_test_split(idx, test_size=0.25, random_state=0, stratify=y)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=0)
    mlp.fit(x[train].astype(np.float32), y[train])
    accuracy = float(mlp.score(x[test].astype(np.float32), y[test]))

    onx = to_onnx(
        mlp,
        initial_types=[("input", FloatTensorType([None, 64]))],
        options={id(mlp): {"zipmap": False}},
        target_opset=17,
    )
    model_path = os.path.join(out, "digits-mlp.onnx")
    with open(model_path + ".tmp", "wb") as f:
        f.write(onx.SerializeToString())
    os.replace(model_path + ".tmp", model_path)

    split = np.empty(len(y), dtype=object)
    split[train] = "train"
    split[test] = "test"
    data_path = os.path.join(out, "digits.jsonl")
    with open(data_path + ".tmp", "w") as f:
        for i in idx:
            row = {"pixels": [int(v) for v in x[i]], "label": int(y[i]), "split": split[i]}
            f.write(json.dumps(row) + "\n")
    os.replace(data_path + ".tmp", data_path)

    info = {
        "model": "digits-mlp.onnx",
        "model_bytes": os.path.getsize(model_path),
        "rows": int(len(y)),
        "train": int(len(train)),
        "test": int(len(test)),
        "sklearn_test_accuracy": accuracy,
    }
    with open(os.path.join(out, "digits.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(json.dumps(info))


if __name__ == "__main__":
    main(sys.argv[1])
