"""How two configs differ, key by key (torch-free: the experiment's reuse check and ``resume=`` both use it)."""

from __future__ import annotations


def config_differences(
    stored: dict, new: dict, may_change: tuple[str, ...], new_keys_ok: bool = False, absent_is_null: bool = False
) -> list[str]:
    """``key=new (the run has old)`` for each flattened key whose value differs, except ``may_change``
    (a key or a ``prefix.``); ``new_keys_ok``: keys the stored config lacks (added later) don't count;
    ``absent_is_null``: only those of them left at null (an option added later whose null means the old behaviour)."""
    flat_old, flat_new = _flatten(stored), _flatten(new)
    out = []
    for key in sorted(set(flat_old) | set(flat_new)):
        if key in may_change or any(p.endswith(".") and key.startswith(p) for p in may_change):
            continue
        if key not in flat_old and (new_keys_ok or (absent_is_null and flat_new.get(key) is None)):
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
