"""Which objects are data files, and how an input's name is read as a key.

The key layout itself is the wrapper's contract (:mod:`coverage_wrapper.keys`):
templates are parsed there, never restated here. Keys in another layout are
still accepted as inputs: for them the data's own ``function@version``
contexts say what ran; a key in the template's layout says whose data it is
(:mod:`coverage_combiner.claims`).
"""

from __future__ import annotations

from coverage_wrapper.keys import DATA_SUFFIX, is_probe_key

#: Why an object that is not a data file was left out.
NOT_DATA = f"not a data file (the name does not end in {DATA_SUFFIX})"


def is_health_probe(key: str) -> bool:
    """Whether ``key`` is one of the wrapper's S3 write probes (counted apart, never read).

    The key contract decides (:func:`coverage_wrapper.keys.is_probe_key`):
    ``.../{function}/_health/*.probe`` inside a function's folder, and the
    older ``{prefix}_health/*.probe``.
    """
    return is_probe_key(key)


def is_data_key(key: str) -> bool:
    """Whether ``key`` names a data file at all (anything else under a prefix is skipped)."""
    return key.endswith(DATA_SUFFIX)


def key_of(name: str) -> str:
    """The part of an input's name a key template is matched against.

    ``s3://bucket/key`` gives the key; a local path is taken whole, its
    folders playing the part of ``{prefix}``.
    """
    if name.startswith("s3://"):
        return name[5:].partition("/")[2]
    return name
