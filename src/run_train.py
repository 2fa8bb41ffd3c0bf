"""Train a next-item model: ``python src/run_train.py --config-name=GPT_train [key=value ...]``.

The last line printed is the ``run_predict.py`` command for the trained run.
"""

import sys
from pathlib import Path


import hydra

from seqrec.cli.entry import hydra_entry, run_main
from seqrec.config.checks import check_train_config

CONFIG_NAME = "GPT_train"


@hydra.main(version_base="1.3", config_path="configs", config_name=CONFIG_NAME)
def main(cfg):
    # the config is checked before the pipeline (torch, Lightning) is imported: a wrong value fails at once
    return run_main("seqrec.training.train:train", cfg, check=check_train_config)


if __name__ == "__main__":
    hydra_entry(main, CONFIG_NAME)  # Hydra errors (unknown key or config) become one "error:" line too
