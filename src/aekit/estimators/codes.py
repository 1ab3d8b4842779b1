"""What aekit's autoencoder estimators share once fitted: codes out, inputs back from codes,
reconstructions, and scikit-learn's output-feature names and tags."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from . import images


class CodesTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """Mixin for an estimator whose ``module_`` has ``encode``, ``decode``, ``forward`` and
    ``n_codes`` (and whose base class provides ``_apply``)."""

    def transform(self, X) -> np.ndarray:
        """Codes of the coding layer, shape (n_samples, n_codes), for rows or images."""
        X = self._check(X)  # first: it raises NotFittedError before module_ is looked up
        return self._apply(self.module_.encode, X)

    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes back to the input space."""
        check_is_fitted(self)
        return self._apply(self.module_.decode, self._check_codes(X))

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))`` in one pass, without noise, in the shape of ``X``
        (images stay images)."""
        rows = self._check(X)
        return images.like_input(self._apply(self.module_, rows), X)

    @property
    def _n_features_out(self) -> int:
        return int(self.module_.n_codes)

    def _check(self, X) -> np.ndarray:
        """``X`` (rows or images) as float32 rows, checked against what the model was fitted on."""
        check_is_fitted(self)
        X, found_shape = images.to_rows(X)
        images.check_shape(found_shape, getattr(self, "image_shape_", None), "the image shape of the fitted model")
        return self._check_rows(X, reset=False)  # rows on disk stay there

    def _check_codes(self, Z) -> np.ndarray:
        Z = check_array(Z, dtype=np.float32)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"codes have {Z.shape[1]} features, but the coding layer of "
                f"{type(self).__name__} has {self._n_features_out}"
            )
        return Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
