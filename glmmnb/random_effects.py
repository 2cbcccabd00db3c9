"""The predicted random effects laid out by group: ``res.random_effects``.

statsmodels' ``MixedLMResults.random_effects`` is a dict of group label to
Series; :class:`RandomEffects` gives the same layout as a read-only mapping
that builds each group's Series (with its nested components) only when it is
read, so that a fit with thousands of groups pays nothing until then.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["RandomEffects"]


class RandomEffects(Mapping):
    """Read-only mapping of group label to the Series of its random effects.

    Parameters
    ----------
    labels : array_like, shape (G,)
        Group labels, in the order of ``values``.
    values : ndarray, shape (G, k)
        The groups' predicted random coefficients.
    names : list of str
        Names of the ``k`` coefficients.
    nested : list of (str, ndarray, ndarray, ndarray)
        Per nested component: its name, the predictions of its groups, their
        labels and the position of the outermost group each lies in.

    Examples
    --------
    >>> import numpy as np
    >>> re = RandomEffects(np.array(["a", "b"]), np.array([[0.1], [-0.1]]), ["slide"], [])
    >>> sorted(re), float(re["b"]["slide"])
    (['a', 'b'], -0.1)
    """

    def __init__(self, labels, values, names, nested):
        self._index = pd.Index(labels)
        self._values = np.asarray(values)
        self._names = list(names)
        self._nested = nested
        self._members = None

    def __len__(self):
        return len(self._index)

    def __iter__(self):
        return iter(self._index)

    def __getitem__(self, label):
        try:
            g = self._index.get_loc(label)
        except (KeyError, TypeError):
            raise KeyError(label) from None
        if not isinstance(g, (int, np.integer)):
            raise KeyError(label)
        index, values = list(self._names), list(self._values[g])
        for name, vals, labs, rows in self._nested_members(g):
            index += [f"{name}[{lab}]" for lab in labs[rows]]
            values += list(vals[rows])
        return pd.Series(values, index=index)

    def _nested_members(self, g):
        """For each nested component, the positions of its groups inside group ``g``."""
        if self._members is None:
            # one stable sort per component, so that a lookup is two bisections
            self._members = []
            for name, vals, labs, outer in self._nested:
                order = np.argsort(outer, kind="stable")
                self._members.append((name, vals, labs, order, np.asarray(outer)[order]))
        for name, vals, labs, order, sorted_outer in self._members:
            lo, hi = np.searchsorted(sorted_outer, [g, g + 1])
            yield name, vals, labs, order[lo:hi]

    def __repr__(self):
        return f"RandomEffects({len(self)} groups: {', '.join(self._names)})"


def _outermost_groups(levels):
    """For each nested level, the outermost group that each of its groups lies in."""
    out, idx = [], None
    for lev in levels[1:]:
        idx = lev.parent if idx is None else idx[lev.parent]
        out.append(idx)
    return out
