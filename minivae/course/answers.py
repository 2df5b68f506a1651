"""Which library functions answer which notebook exercise.

Every exercise of every lesson is listed, keyed by (lesson, exercise). The value is either the
library functions whose code computes what the exercise asks, by name in
:data:`minivae.checks.LIBRARY_EXERCISES` (so a student edition stubs each of them: the answer is
not in the student's files, and writing the function is an exercise of its own), or a sentence
saying why no library function answers it. The test suite keeps this table complete: a new
exercise must be listed, and every function named here must be a library exercise.
"""

from __future__ import annotations

__all__ = ["ANSWERS"]

NONE = "no library function computes it"

ANSWERS: dict[tuple[int, int], tuple[str, ...] | str] = {
    (1, 1): ("Linear.backward",),
    (1, 2): ("Adam.update",),
    (1, 3): ("Linear.backward", "Adam.update"),  # into the library
    (2, 1): ("bernoulli_nll", "bernoulli_log_prob"),
    (2, 2): ("bernoulli_nll",),
    (2, 3): NONE + " (the library counts parameters only by building a model)",
    (2, 4): ("gaussian_nll", "gaussian_log_prob"),
    (2, 5): ("bernoulli_log_prob", "bernoulli_nll", "gaussian_log_prob", "gaussian_nll"),
    (3, 1): NONE + " (plots.latent_scatter projects onto two principal components by an SVD, as the"
    " lesson's section 2 does in plain view; the exercise asks for the covariance's eigenvectors)",
    (3, 2): NONE + ": no library function reconstructs from k principal components",
    (3, 3): NONE,
    (3, 4): NONE,
    (4, 1): ("Classifier.accuracy",),
    (4, 2): ("softmax_cross_entropy",),
    (4, 3): ("squared_distances",),  # the all-pairs distances of a 1-nearest-neighbour rule
    (4, 4): NONE + " (metrics.frechet_distance compares two fitted Gaussians, not one with I)",
    (4, 5): ("softmax_cross_entropy", "Classifier.accuracy"),
    (5, 1): ("GaussianSampler.backward",),
    (5, 2): NONE + ": the library has no Monte Carlo gradient",
    (5, 3): ("GaussianSampler.backward",),
    (6, 1): ("kl_standard_normal", "kl_per_element"),
    (6, 2): NONE + ": the library has no Monte Carlo KL",
    (6, 3): NONE + ": worked on paper",
    (6, 4): ("kl_standard_normal", "kl_per_element"),
    (7, 1): ("VAE.loss",),
    (7, 2): ("gaussian_nll", "gaussian_log_prob"),
    (7, 3): ("VAE.backward",),
    (7, 4): ("log_weights",),
    (7, 5): ("VAE.loss", "VAE.backward", "log_weights"),
    (8, 1): ("kl_per_dimension", "kl_per_element"),
    (8, 2): ("latent_activity",),
    (8, 3): ("interpolation",),
    (8, 4): NONE + ": the library has no spherical interpolation",
    (8, 5): ("kl_per_dimension", "latent_activity", "interpolation"),
    (9, 1): NONE + ": the benchmarks' timers are not part of the package",
    (9, 2): NONE
    + " (checkpoint.write_npz writes .npz files too, but as a bounded, atomic writer whose"
    " code is no answer to np.savez and np.load)",
    (9, 3): ("squared_distances",),
    (9, 4): ("squared_distances",),
    (10, 1): ("Schedule.q_mean_var", "Schedule.q_sample"),
    # (ddim_step with η = 1 takes the same step by DDIM's algebra, not by the formula asked for)
    (10, 2): ("LatentDiffusion.ddpm_step",),
    (10, 3): ("LatentDiffusion.backward",),
    (10, 4): (
        "Schedule.q_mean_var",
        "Schedule.q_sample",
        "LatentDiffusion.ddpm_step",
        "LatentDiffusion.backward",
    ),
}
