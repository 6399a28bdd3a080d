"""Comparing two JSON documents of losslens whose sums were added up in different orders.

Two engines (local and Dask), or two ways of scoring (row slices and column by column), add
the same terms in another order, so floats agree within a few ulps, not bit for bit, while
counts, names and ranks must be equal.
"""

from __future__ import annotations

import math

#: Relative tolerance of reordered float64 sums: about 5,000 ulps, far below any printed
#: digit, far above the rounding of a sum over millions of terms added in another order.
REL = 1e-12

#: Figures the local engine finishes from its bounded example sample
#: (losslens.calibration_sample, losslens.calibration_intervals); the Dask engine has no such
#: sample, leaves them null (the bins empty) and says so in a layout note.
SAMPLED = ("ece_equal_mass", "temperature", "log_loss_after_temperature", "calibration_loss", "refinement_loss",
           "brier_after_temperature", "ece_equal_width_ci95", "ece_equal_mass_ci95", "rms_calibration_error_ci95",
           "max_calibration_error_ci95", "equal_mass_bins")


def assert_json_close(a, b, path: str = "$", skip: tuple[str, ...] = ()) -> None:
    """Assert that two JSON-like values are equal, floats to a relative :data:`REL`.

    Keys in ``skip`` are not compared (file names, timings).
    """
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            if key in skip:
                continue
            if key == "kl_empirical_bits_corrected" and isinstance(a[key], float):
                # A difference of two nearly equal sums (plug-in KL minus its bias): summing
                # in another order moves it by a few ulps of the KL, not of itself.
                assert math.isclose(a[key], b[key], abs_tol=REL * abs(a["kl_empirical_bits"])), (path, a[key], b[key])
                continue
            if key == "prior_shift_p_value" and isinstance(a[key], float):
                # The G statistic 2·Σ O·log(O/E) sums terms of both signs to a small total, so
                # a few ulps of its terms move the p-value by ~1e-12 of itself.
                assert math.isclose(a[key], b[key], rel_tol=1e-9), (path, a[key], b[key])
                continue
            assert_json_close(a[key], b[key], f"{path}.{key}", skip)
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_json_close(x, y, f"{path}[{i}]", skip)
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=REL, abs_tol=1e-300) or (math.isnan(a) and math.isnan(b)), (path, a, b)
    else:
        assert a == b, (path, a, b)
