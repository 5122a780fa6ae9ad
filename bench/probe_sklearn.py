"""bench/probe.ts's reference: scikit-learn's LogisticRegression (lbfgs) on the same features.

argv[1]: JSON {"dir": folder with train_x.f32, train_y.i32, test_x.f32, test_y.i32, "dim": D,
"C": C, "max_iter": M}. Features are passed as float32, as a user holding float32 embeddings
would (scikit-learn's lbfgs keeps float32). Writes test predictions to dir/sklearn_pred.i32 and
prints one JSON line: fit seconds (the fit alone), test accuracy, iterations.
"""
import json
import os
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

args = json.loads(sys.argv[1])


def load(name, dtype, dim=None):
    a = np.fromfile(os.path.join(args["dir"], name), dtype=dtype)
    return a.reshape(-1, dim) if dim else a


x_train = load("train_x.f32", np.float32, args["dim"])
y_train = load("train_y.i32", np.int32)
x_test = load("test_x.f32", np.float32, args["dim"])
y_test = load("test_y.i32", np.int32)
t0 = time.perf_counter()
clf = LogisticRegression(C=args["C"], max_iter=args["max_iter"]).fit(x_train, y_train)
fit_seconds = time.perf_counter() - t0
pred = clf.predict(x_test).astype(np.int32)
pred.tofile(os.path.join(args["dir"], "sklearn_pred.i32"))
print(json.dumps({
    "fit_seconds": fit_seconds,
    "accuracy": float((pred == y_test).mean()),
    "n_iter": int(clf.n_iter_.max()),
    "dtype": str(clf.coef_.dtype),
}))
