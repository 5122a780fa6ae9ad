"""scikit-learn's LogisticRegression (lbfgs, multinomial) on a probe problem, for the tests.

stdin: JSON {"dir": folder with train_x.f32, train_y.i32, test_x.f32, test_y.i32, "dim": D,
"C": C, "max_iter": M}. stdout: JSON with the test accuracy, predictions and iterations.
"""
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

args = json.load(sys.stdin)


def load(name, dtype, dim=None):
    a = np.fromfile(os.path.join(args["dir"], name), dtype=dtype)
    return a.reshape(-1, dim) if dim else a


x_train = load("train_x.f32", np.float32, args["dim"]).astype(np.float64)
y_train = load("train_y.i32", np.int32)
x_test = load("test_x.f32", np.float32, args["dim"]).astype(np.float64)
y_test = load("test_y.i32", np.int32)
clf = LogisticRegression(C=args["C"], max_iter=args["max_iter"]).fit(x_train, y_train)
pred = clf.predict(x_test)
print(json.dumps({
    "accuracy": float((pred == y_test).mean()),
    "predictions": pred.tolist(),
    "n_iter": int(clf.n_iter_.max()),
}))
