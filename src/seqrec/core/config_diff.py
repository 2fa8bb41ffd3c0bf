"""How two configs differ, key by key (torch-free: the experiment's reuse check and ``resume=`` both use it)."""

from __future__ import annotations


def config_differences(
    stored: dict, new: dict, may_change: tuple[str, ...], new_keys_ok: bool = False
) -> list[str]:
    """``key=new (the run has old)`` for each flattened key whose value differs, except ``may_change``
    (a key or a ``prefix.``); ``new_keys_ok``: keys the stored config lacks don't count. A stored config is compared
    in the current format (:func:`seqrec.config.upgrade.load_run_config`)."""
    flat_old, flat_new = _flatten(stored), _flatten(new)
    out = []
    for key in sorted(set(flat_old) | set(flat_new)):
        if key in may_change or any(p.endswith(".") and key.startswith(p) for p in may_change):
            continue
        if key not in flat_old and new_keys_ok:
            continue
        old, now = flat_old.get(key, "<absent>"), flat_new.get(key, "<absent>")
        if old != now:
            out.append(f"{key}={_short(now)} (the run has {_short(old)})")
    return out


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
