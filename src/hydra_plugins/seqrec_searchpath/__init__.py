"""Hydra search-path plug-in: config folders of seqrec plug-ins, from ``$SEQREC_CONFIG_PATH``.

A plug-in outside ``src/`` (a new model or strategy) brings its own configs (``<name>_train.yaml``,
``model/<name>.yaml``, a predict config ...). Listing their folder in ``SEQREC_CONFIG_PATH`` (``os.pathsep``
separated) makes them visible to ``run_train.py`` / ``run_predict.py`` ``--config-name=...``, to config groups
(``model=<name>``) and to the paper experiment (``scripts/reproduce_paper.py``), which composes through the same
search path. Hydra finds this class because the project is installed (``pip install -e .``, ``scripts/setup.sh``) (the ``hydra_plugins`` namespace).
"""

import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

ENV = "SEQREC_CONFIG_PATH"


class SeqrecPluginConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for folder in filter(None, os.environ.get(ENV, "").split(os.pathsep)):
            search_path.append(provider="seqrec-plugin", path=f"file://{os.path.abspath(folder)}")
