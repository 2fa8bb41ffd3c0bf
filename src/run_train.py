"""Train a next-item model: ``python src/run_train.py --config-name=GPT_train [key=value ...]``.

The last line printed is the ``run_predict.py`` command for the trained run.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hydra  # noqa: E402

from seqrec.cli import run_main  # noqa: E402
from seqrec.pipeline import train  # noqa: E402


@hydra.main(version_base="1.3", config_path="configs", config_name="GPT_train")
def main(cfg):
    return run_main(train, cfg)


if __name__ == "__main__":
    main()
