"""Train a next-item model: ``python src/run_train.py --config-name=GPT_train [key=value ...]``.

The last line printed is the ``run_predict.py`` command for the trained run.
"""

import hydra

from seqrec.cli.entry import hydra_entry, run_main

CONFIG_NAME = "GPT_train"


@hydra.main(version_base="1.3", config_path="configs", config_name=CONFIG_NAME)
def main(cfg):
    # the config is resolved and checked once, before torch and Lightning are imported: a wrong value fails at once
    return run_main("seqrec.training.train:fit", cfg, resolve="seqrec.config.spec:resolve_train")


if __name__ == "__main__":
    hydra_entry(main, CONFIG_NAME)  # Hydra errors (unknown key or config) become one "error:" line too
