"""scikit-learn's own estimator checks on AutoencoderTransformer."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import AutoencoderTransformer

# A check that cannot pass goes here as name -> reason.
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_methods_sample_order_invariance": "float32 outputs of a row can differ in the last ulp (1.2e-7 "
    "relative, above the check's rtol of 1e-7) with the row's position in X: torch's CPU ELU computes the "
    "vectorised body and the scalar tail of a tensor with expm1 implementations that round differently. The "
    "check draws its permutation from numpy's global random state, so it fails for about 1 permutation in 5. "
    "test_transform_is_row_order_invariant_to_float32_rounding checks the property at a few ulps.",
}


@parametrize_with_checks(
    [AutoencoderTransformer(hidden_layer_sizes=(4,), epochs=2, batch_size=16, random_state=0, device="cpu")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
