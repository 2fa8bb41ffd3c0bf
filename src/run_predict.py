"""Recommend with a trained run: ``python src/run_predict.py --config-name=GPT_predict train_task=<ID>``."""

import hydra

from seqrec.cli.entry import hydra_entry, run_main

CONFIG_NAME = "GPT_predict"


@hydra.main(version_base="1.3", config_path="configs", config_name=CONFIG_NAME)
def main(cfg):
    # the config is resolved and checked once, before torch is imported: a wrong value fails at once
    return run_main("seqrec.evaluation.predict:recommend_and_score", cfg, resolve="seqrec.config.spec:resolve_predict")


if __name__ == "__main__":
    hydra_entry(main, CONFIG_NAME)  # Hydra errors (unknown key or config) become one "error:" line too
