"""Active learning for the ML-DMFT network (``mldmft active``, ``configs/active.yaml``).

Round ``k`` evaluates the current network (round 0: the starting checkpoint, by default the
shipped one) in unguarded network-DMFT sweeps over a grid of ``(beta, U, density)``, both
branches, and counts the iterations whose result is distrusted
(:func:`mldmft.dmft.steps.guard_reasons`: ensemble spread above a threshold, a positive
``G(tau)``, an acausal raw prediction, a trust-region cut). Their fraction is the round's *guard
rate*. Unless it is below ``stop_guard_rate`` (or the sample budget is spent, or ``max_rounds``
retrainings are done), the flagged iterates' hybridisations are ranked by farthest-point sampling
in a feature space of ``Delta_l``, ``beta``, ``U``, ``eps_d`` (:mod:`.select`), fitted with
``n_bath`` poles, solved by the database generator with the training database's own layout,
merged into it without duplicates, and the network is retrained (warm start) on the result. The
new checkpoint is evaluated in round ``k + 1``. A fixed list of held-out DMFT points, solved once
with the exact solver (ED-DMFT, ``n_bath = 8``), gives each round's ``max |dZ|`` and ``max |dn|``.

Modules: :mod:`.config` (typed configuration, checks before any work), :mod:`.evaluate` (the
sweeps and the held-out error), :mod:`.select` (features, farthest-point sampling, bath fits),
:mod:`.records` (``rounds.h5``, ``rounds.csv``, ``rounds.png``), :mod:`.run` (the resumable
round loop). Documentation: ``docs/networks.md``, section "Active learning".
"""

from .config import ActiveConfig, active_config_from_dict
from .run import ActiveSummary, run_active

__all__ = ["ActiveConfig", "active_config_from_dict", "run_active", "ActiveSummary"]
