"""VariationalAutoencoder: a VAE (Kingma & Welling 2014) as a scikit-learn transformer that
also generates."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import engine, training, variational
from ..engine import BATCH_SIZE, EPOCHS, LEARNING_RATE
from ..nn import LIKELIHOODS, DenseVAE, VAEConfig
from ..params import Interval, InvalidParameterError, Options, Param
from .base import ACTIVATION, HIDDEN_LAYER_SIZES, AekitEstimator, TrainingParams, estimator
from .codes import CodesTransformer

_COUNT = Interval(int, 1)  # how many samples: n_samples, n_importance
_SCORE_SEED = 0  # the ELBO's one sample per row comes from this seed, so `score` repeats


@estimator
class VariationalAutoencoder(CodesTransformer, TrainingParams, AekitEstimator):
    """Variational autoencoder: a Gaussian latent space that can be sampled to generate new
    rows, as a scikit-learn transformer.

    ``transform`` gives the posterior means, ``inverse_transform`` decodes codes to E[x | z],
    ``sample(n)`` decodes draws from the prior N(0, I), ``score`` is the mean ELBO per row and
    ``log_likelihood`` each row's importance-sampled log p(x), both in nats.

    {parameters}

    Attributes
    ----------
    module_ : aekit.nn.DenseVAE
    history_ : list of dict
        One record per epoch: ``loss`` (the negative ELBO with the KL weighted as in training),
        ``reconstruction`` (-log p(x | z), nats per row) and ``kl`` (nats per row).
    n_features_in_ : int
    n_iter_ : int
        Epochs run.
    """

    hidden_layer_sizes: tuple = HIDDEN_LAYER_SIZES.but(
        doc="Encoder widths, bottom first; the decoder mirrors them (latent -> widths reversed -> inputs)."
    ).field((500, 500), kw_only=False)
    latent_dim: int = Param(Interval(int, 1), "Dimensions of the Gaussian latent space.").field(50)
    activation: str = ACTIVATION.field("elu")
    likelihood: str = Param(
        Options(*LIKELIHOODS),
        "p(x | z): 'bernoulli' (inputs in [0, 1], e.g. pixels) or 'gaussian' (one learned scale per feature).",
    ).field("bernoulli")
    beta: float = Param(
        Interval(float, 0), "Weight of the KL term of the ELBO; 1 is the VAE, above 1 a beta-VAE (Higgins et al. 2017)."
    ).field(1.0)
    kl_warmup_epochs: int = Param(
        Interval(int, 0),
        "Epochs over which the KL weight rises linearly from 0 to beta (Bowman et al. 2016); 0: beta from the start.",
    ).field(0)
    binarize: str | None = Param(
        Options(None, "dynamic"),
        "'dynamic': every batch is a fresh Bernoulli sample of its rows, read as probabilities "
        "(the protocol of published MNIST log-likelihoods); None: train on X as it is.",
    ).field(None)
    epochs: int = EPOCHS.field(50)
    batch_size: int = BATCH_SIZE.field(100)
    learning_rate: float = LEARNING_RATE.field(1e-3)

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on ``X`` of shape (n_samples, n_features); ``y`` is ignored. Returns self."""
        self._validate_params()
        X = validate_data(self, X, dtype=np.float32)
        self._check_inputs(X)
        device, init_generator, generator = self._runtime(self.random_state)
        self.module_ = DenseVAE(self._module_config(X.shape[1]), init_generator).to(device)
        data = engine.as_tensor(X, device)
        self.history_ = training.train_variational(
            self.module_,
            engine.DynamicBinarized(data) if self.binarize == "dynamic" else data,
            beta=self.beta,
            warmup_epochs=self.kl_warmup_epochs,
            config=self._train_config("train"),
            generator=generator,
        )
        self.n_iter_ = len(self.history_)
        return self

    def _check_params_together(self) -> None:
        self._check_early_stopping()
        if self.binarize == "dynamic" and self.likelihood != "bernoulli":
            raise InvalidParameterError(
                f"binarize='dynamic' draws binary rows, which need likelihood='bernoulli', not {self.likelihood!r}"
            )

    def _module_config(self, n_features: int) -> VAEConfig:
        sizes = self.hidden_layer_sizes
        return VAEConfig(
            n_inputs=n_features,
            hidden_sizes=tuple(sizes) if isinstance(sizes, (tuple, list)) else (sizes,),
            latent_dim=self.latent_dim,
            activation=self.activation,
            likelihood=self.likelihood,
        )

    def _check_inputs(self, X: np.ndarray) -> None:
        if self.likelihood == "bernoulli" and len(X) and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                f"likelihood='bernoulli' needs inputs in [0, 1], but X lies in [{X.min():.4g}, {X.max():.4g}]; "
                "scale X (e.g. MinMaxScaler) or use likelihood='gaussian'"
            )

    # -- using the fitted model ----------------------------------------------------------
    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """``n_samples`` new rows: E[x | z] for z drawn from the prior N(0, I).

        ``random_state`` (None, an int or a RandomState) seeds the draws.
        """
        check_is_fitted(self)
        _COUNT.check("n_samples", n_samples)
        z = check_random_state(random_state).standard_normal((n_samples, self.latent_dim)).astype(np.float32)
        return self.inverse_transform(z)

    def score(self, X, y=None) -> float:
        """Mean ELBO per row in nats (higher is better): E_q[log p(x | z)] - KL(q(z | x) || p(z)),
        with one z per row drawn from a fixed seed, so the same model and rows give the same score."""
        X = self._checked_inputs(X)
        generator = self._generator(_SCORE_SEED)

        def elbo(x):
            nll, kl = variational.elbo_parts(self.module_, x, generator)
            return -(nll + kl)

        return float(np.mean(self._apply(elbo, X, batch_size=1024)))

    def log_likelihood(self, X, n_importance: int = 1000, random_state=None) -> np.ndarray:
        """Each row's importance-sampled estimate of log p(x), in nats (Burda et al. 2016).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        n_importance : int, default=1000
            Posterior samples per row; the estimate is a lower bound in expectation that
            tightens as it grows (1 gives the ELBO).
        random_state : None, int or RandomState
            Seeds the samples.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        _COUNT.check("n_importance", n_importance)
        X = self._checked_inputs(X)
        generator = self._generator(int(check_random_state(random_state).randint(0, 2**31 - 1)))
        return self._apply(
            lambda x: variational.importance_log_likelihood(self.module_, x, n_importance, generator),
            X,
            batch_size=500,
        )

    def _checked_inputs(self, X) -> np.ndarray:
        X = self._check(X)
        self._check_inputs(X)
        return X

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=next(self.module_.parameters()).device).manual_seed(seed)
