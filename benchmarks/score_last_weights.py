"""Test accuracy of a classifier run's selected weights and of its last ones, side by side.

A run keeps in ``model.safetensors`` the weights its validation selected and in ``checkpoint/last.safetensors``
those of its last update. Keras' ``fit`` (the seed-003 ports) scores its last epoch's; this scores both on the
run's own test split (its ``data.test`` file, or the examples ``data.test_fraction`` held out, split as the
run split them), so a comparison can use Keras' protocol. One JSON line per run and a short table.

  python benchmarks/score_last_weights.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, markdown_table  # noqa: E402


def scores(run: Path) -> dict[str, float]:
    import torch

    from rnnkit.api import read_model_config
    from rnnkit.checkpoint import load_weights
    from rnnkit.distributed import DistInfo
    from rnnkit.tasks.classify import Classifier, ClassifyTask

    cpu = torch.device("cpu")
    model_dir, cfg = read_model_config(run)
    task = ClassifyTask(cfg, DistInfo(), cpu)  # reads and splits the data as the run did
    examples = task.test_examples if task.test_examples is not None else task.held_test
    if examples is None:
        raise SystemExit(f"{run}: the run has no test split (data.test or data.test_fraction)")
    classifier = Classifier.load(model_dir, cfg, cpu)
    result = {"selected": classifier.evaluate_examples(examples)["accuracy"]}
    load_weights(classifier.model, model_dir / "checkpoint" / "last.safetensors")
    result["last"] = classifier.evaluate_examples(examples)["accuracy"]
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="classifier run directories")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    for run in args.runs:
        result = scores(run)
        emit({"bench": "score_last_weights", "run": str(run), "test_acc_selected": round(result["selected"], 4),
              "test_acc_last": round(result["last"], 4)})
        rows.append([str(run), f"{result['selected']:.4f}", f"{result['last']:.4f}"])
    print(markdown_table(["run", "test accuracy, selected weights", "test accuracy, last weights"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
