"""Do the oracle learning tests catch a broken model? Run their bars on deliberately broken variants.

For each model, train it on the oracle log exactly as ``tests/test_oracle_learning.py`` does, but with

* ``attention``: every attention layer returns its values unmixed (each position sees only itself, so the
  model cannot read the history: a Markov-1 model with extra steps);
* ``loss``: the training loss is multiplied by 0 (no gradient: the model stays at its random initialisation);
* ``none``: nothing broken (what the tests run),

and print each bar with its paired CI. A bar that a broken variant still passes does not test what it claims.

    python scripts/break_oracle_tests.py --models GPT SASRec --breaks none attention loss
    python scripts/break_oracle_tests.py --models SASRec --breaks none --train-override loss=BCE   # SASRec's own loss
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def broken(kind: str):
    import torch.nn.functional as F

    from seqrec.training import losses

    if kind == "none":
        yield
    elif kind == "attention":
        def own_value(q, k, v, *args, **kwargs):  # query position i gets the value of key position i
            return v[..., -q.shape[-2]:, :]

        with mock.patch.object(F, "scaled_dot_product_attention", own_value):
            yield
    elif kind == "loss":
        patches = [mock.patch.object(cls, "forward", (lambda f: lambda self, *a, **kw: f(self, *a, **kw) * 0)(cls.forward))
                   for cls in (losses.CrossEntropy, losses._Sampled)]
        with contextlib.ExitStack() as stack:
            for p in patches:
                stack.enter_context(p)
            yield
    else:
        raise SystemExit(f"error: unknown break {kind!r}; use none, attention or loss")


def main() -> None:
    from seqrec.cli.flags import renamed_flag

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["GPT", "SASRec", "gSASRec", "BERT4Rec"])
    ap.add_argument("--breaks", nargs="+", default=["none", "attention", "loss"])
    ap.add_argument("--train-override", action="append", default=[], metavar="KEY=VALUE",
                    help="extra training override after the test's own, repeatable (e.g. loss=BCE: SASRec with its own "
                    "loss)")
    renamed_flag(ap, "--override", "--train-override", nargs="*")  # the old flag took several values at once
    args = ap.parse_args()

    from seqrec.core.paths import load_file_module


    load_file_module(ROOT / "tests" / "conftest.py")  # the test module imports its helpers by name

    t = load_file_module(ROOT / "tests" / "test_oracle_learning.py")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        case = t.build_oracle_case(tmp / "oracle.csv")
        for model in args.models:
            if model not in t.MODELS:
                raise SystemExit(f"error: unknown model {model!r}; use {', '.join(t.MODELS)}")
            config, extra, claims = t.MODELS[model]
            for kind in args.breaks:
                with broken(kind):
                    got = t.train_on_oracle(tmp / f"{model}_{kind}", case, config, [*extra, *args.train_override],
                                            t.TOPK)
                bars = t.topk_bars(got["Top-K"], case.base, claims)
                passed = sum(b.ok for b in bars)
                print(f"\n{model}, broken: {kind} -- {passed}/{len(bars)} bars pass", flush=True)
                print(t.summary({f"{model} Top-K": got["Top-K"]}, case.base), flush=True)
                for bar in bars:
                    print(f"  {bar}", flush=True)


if __name__ == "__main__":
    main()
