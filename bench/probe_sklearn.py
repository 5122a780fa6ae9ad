"""bench/probe.ts's reference: scikit-learn's LogisticRegression (lbfgs) on the same features.

argv[1]: JSON {"dir": folder with train_x.f32, train_y.i32, test_x.f32, test_y.i32, "dim": D,
"C": C, "max_iter": M, "threads": T, "repeats": R}. Features are passed as float32, as a user
holding float32 embeddings would. What runs where (scikit-learn 1.9): the L-BFGS iterate is
float64 (SciPy's L-BFGS-B); the per-sample loss and gradient run single-threaded
(LogisticRegression passes n_threads=1); only the BLAS products use threads, T of them
(OMP_NUM_THREADS / OPENBLAS_NUM_THREADS set by the parent, and threadpoolctl here).
Writes the last fit's test predictions to dir/sklearn_pred.i32 and prints one JSON line: fit
seconds per timed repeat (after a warm-up fit), test accuracy, iterations, dtypes, BLAS threads.
"""

import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import args, emit, timed  # noqa: E402

A = args()


def load(name, dtype, dim=None):
    a = np.fromfile(os.path.join(A["dir"], name), dtype=dtype)
    return a.reshape(-1, dim) if dim else a


x_train = load("train_x.f32", np.float32, A["dim"])
y_train = load("train_y.i32", np.int32)
x_test = load("test_x.f32", np.float32, A["dim"])
y_test = load("test_y.i32", np.int32)

with threadpool_limits(limits=A["threads"]):
    blas = sorted({(p["internal_api"], p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"})
    runs = timed(lambda: LogisticRegression(C=A["C"], max_iter=A["max_iter"]).fit(x_train, y_train), A["repeats"])
clf = runs[-1][1]
pred = clf.predict(x_test).astype(np.int32)
pred.tofile(os.path.join(A["dir"], "sklearn_pred.i32"))
emit(
    {
        "fit_seconds": [seconds for seconds, _ in runs],
        "accuracy": float((pred == y_test).mean()),
        "n_iter": int(clf.n_iter_.max()),
        "x_dtype": str(x_train.dtype),
        "coef_dtype": str(clf.coef_.dtype),
        "blas": [f"{api} x{n}" for api, n in blas],
    }
)
