"""scikit-learn's own estimator checks on AutoencoderTransformer."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import AutoencoderTransformer

# Every check passes at present; a check that cannot pass goes here as name -> reason.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    [AutoencoderTransformer(hidden_layer_sizes=(4,), epochs=2, batch_size=16, random_state=0, device="cpu")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
