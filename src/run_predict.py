"""Recommend with a trained run: ``python src/run_predict.py --config-name=GPT_predict train_task=<ID>``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hydra  # noqa: E402

from seqrec.cli import run_main  # noqa: E402
from seqrec.pipeline import predict  # noqa: E402


@hydra.main(version_base="1.3", config_path="configs", config_name="GPT_predict")
def main(cfg):
    return run_main(predict, cfg)


if __name__ == "__main__":
    main()
