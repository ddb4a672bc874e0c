"""LogME (You et al., ICML 2021): how well a backbone's frozen features suit a task, without training.

For each target column y (one-vs-rest class indicator, label indicator, or a standardised regression target)
LogME fits the Bayesian linear model y = F w + noise, w ~ N(0, 1/alpha), noise ~ N(0, 1/beta), maximising the
evidence p(y | F, alpha, beta) over alpha and beta by the paper's fixed-point iteration, and reports the log
evidence per example, averaged over the columns. Higher is better; scores are comparable across backbones on
the same data, not across datasets.

Closed form on one SVD of F (economy size, so D > N costs O(N^2 D), not O(D^3)): with F = U S V^T, the
eigenvalues of F^T F are sigma = S^2 on the row space and 0 on the other D - r directions, and every step of the
iteration is a few vector operations in that basis.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-5
MAX_STEPS = 11  # the paper: converges in two or three steps, at most ten


def _evidence(y: np.ndarray, projected: np.ndarray, sigma: np.ndarray, n: int, d: int) -> float:
    """Maximum log evidence per example of one target column.

    `projected` = V^T F^T y (the target's correlation with each feature direction), `sigma` the nonzero
    eigenvalues of F^T F; directions with eigenvalue 0 contribute only through alpha's prior term.
    """
    alpha, beta = 1.0, 1.0
    y_norm = float(y @ y)
    for _ in range(MAX_STEPS):
        lam = alpha / beta
        gamma = float((sigma / (sigma + lam)).sum())
        m = projected * beta / (alpha + beta * sigma)  # posterior mean of w, in the V basis
        alpha_de = float((m * m).sum())
        # ||y - F m||^2 = ||y||^2 - 2 m.(V^T F^T y) + m^T diag(sigma) m  (no N x D product needed)
        beta_de = max(y_norm - 2.0 * float(m @ projected) + float((sigma * m * m).sum()), 0.0)
        alpha = gamma / (alpha_de + EPSILON)
        beta = (n - gamma) / (beta_de + EPSILON)
        if abs(alpha / beta - lam) / lam < 0.01:
            break
    evidence = (
        d / 2.0 * np.log(alpha)
        + n / 2.0 * np.log(beta)
        - 0.5 * np.sum(np.log(alpha + beta * sigma))
        - 0.5 * (d - len(sigma)) * np.log(alpha)
        - beta / 2.0 * (beta_de + EPSILON)
        - alpha / 2.0 * (alpha_de + EPSILON)
        - n / 2.0 * np.log(2 * np.pi)
    )
    return float(evidence / n)


def logme_score(features: np.ndarray, targets: np.ndarray) -> float:
    """Mean LogME over the target columns. features [N, D]; targets [N, K] (K one-hot / multi-hot / value columns)."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    n, d = f.shape
    _, singular, vt = np.linalg.svd(f, full_matrices=False)
    keep = singular > singular.max() * 1e-10 if singular.size else singular > 0
    sigma, vt = singular[keep] ** 2, vt[keep]
    projected = vt @ (f.T @ y)  # [r, K]
    return float(np.mean([_evidence(y[:, k], projected[:, k], sigma, n, d) for k in range(y.shape[1])]))
