#!/usr/bin/env python3
"""The recipe for the classical ML models of benchmarks/ml_models.py (RESULTS.md, "Classical ML
models: sklearn, LightGBM, XGBoost (session 14)").

usage: ml_build_models.py OUT_DIR

Trains 18 tabular models on scikit-learn's bundled data sets (digits, breast cancer, diabetes,
wine) and converts them with skl2onnx / onnxmltools at their default opsets into OUT_DIR/NAME.onnx,
with the first 64 rows as OUT_DIR/NAME.x.npy (rows the models were trained on: a conformance check
against ONNX Runtime, not an accuracy measure). skl-hgb-cancer does not convert with these versions,
so 17 are written. Its converters and trainers (skl2onnx, onnxmltools, lightgbm, xgboost-cpu,
scikit-learn) are pinned in requirements.txt: `.venv/bin/python benchmarks/ml_build_models.py OUT`.
No test runs it.
"""
import numpy as np, os, sys, warnings
warnings.filterwarnings("ignore")
from sklearn.datasets import load_iris, load_digits, load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier, GradientBoostingClassifier, RandomForestRegressor, HistGradientBoostingClassifier, ExtraTreesRegressor
from sklearn.linear_model import LogisticRegression, LinearRegression, Ridge
from sklearn.svm import SVC, SVR
from sklearn.preprocessing import StandardScaler, MinMaxScaler, OneHotEncoder
from sklearn.pipeline import make_pipeline
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.decomposition import PCA
from sklearn.tree import DecisionTreeClassifier
import lightgbm, xgboost
from skl2onnx import to_onnx, convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat
import onnxmltools
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
Xd, yd = load_digits(return_X_y=True); Xd = Xd.astype(np.float32)
Xb, yb = load_breast_cancer(return_X_y=True); Xb = Xb.astype(np.float32)
Xr, yr = load_diabetes(return_X_y=True); Xr = Xr.astype(np.float32)
Xw, yw = load_wine(return_X_y=True); Xw = Xw.astype(np.float32)
def save(name, model, X, **kw):
    try:
        m = to_onnx(model, X[:1], **kw)
    except Exception as e:
        print(name, "convert failed", type(e).__name__, str(e)[:200]); return
    with open(f"{out}/{name}.onnx", "wb") as f: f.write(m.SerializeToString())
    np.save(f"{out}/{name}.x.npy", X[:64])
    print(name, "ok", [(o.domain or 'ai.onnx', o.version) for o in m.opset_import])
save("skl-rf-digits", RandomForestClassifier(n_estimators=50, max_depth=10, random_state=0).fit(Xd, yd), Xd, options={"zipmap": False})
save("skl-rf-digits-zipmap", RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0).fit(Xd, yd), Xd)
save("skl-gb-cancer", GradientBoostingClassifier(n_estimators=50, random_state=0).fit(Xb, yb), Xb, options={"zipmap": False})
save("skl-hgb-cancer", HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(Xb, yb), Xb, options={"zipmap": False})
save("skl-rfr-diabetes", RandomForestRegressor(n_estimators=50, max_depth=8, random_state=0).fit(Xr, yr), Xr)
save("skl-etr-diabetes", ExtraTreesRegressor(n_estimators=30, random_state=0).fit(Xr, yr), Xr)
save("skl-dt-wine", DecisionTreeClassifier(random_state=0).fit(Xw, yw), Xw, options={"zipmap": False})
save("skl-scaler-logreg-digits", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(Xd, yd), Xd, options={"zipmap": False})
save("skl-linreg-diabetes", LinearRegression().fit(Xr, yr), Xr)
save("skl-svc-wine", make_pipeline(MinMaxScaler(), SVC(probability=True, random_state=0)).fit(Xw, yw), Xw, options={"zipmap": False})
save("skl-svr-diabetes", SVR().fit(Xr, yr), Xr)
save("skl-pca-mlp-digits", make_pipeline(PCA(20), MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0)).fit(Xd, yd), Xd, options={"zipmap": False})
save("skl-knn-wine", KNeighborsClassifier(5).fit(Xw, yw), Xw, options={"zipmap": False})
for name, model, X, y in (("lgbm-cancer", lightgbm.LGBMClassifier(n_estimators=60, verbose=-1), Xb, yb),
                          ("lgbm-digits", lightgbm.LGBMClassifier(n_estimators=30, verbose=-1), Xd, yd),
                          ("lgbm-diabetes", lightgbm.LGBMRegressor(n_estimators=60, verbose=-1), Xr, yr)):
    model.fit(X, y)
    try:
        m = onnxmltools.convert_lightgbm(model, initial_types=[("input", MlFloat([None, X.shape[1]]))], zipmap=False) if "Classifier" in type(model).__name__ else onnxmltools.convert_lightgbm(model, initial_types=[("input", MlFloat([None, X.shape[1]]))])
        open(f"{out}/{name}.onnx", "wb").write(m.SerializeToString()); np.save(f"{out}/{name}.x.npy", X[:64]); print(name, "ok", [(o.domain or 'ai.onnx', o.version) for o in m.opset_import])
    except Exception as e: print(name, "convert failed", e)
for name, model, X, y in (("xgb-cancer", xgboost.XGBClassifier(n_estimators=60, max_depth=4), Xb, yb),
                          ("xgb-diabetes", xgboost.XGBRegressor(n_estimators=60, max_depth=4), Xr, yr)):
    model.fit(X, y)
    try:
        m = onnxmltools.convert_xgboost(model, initial_types=[("input", MlFloat([None, X.shape[1]]))])
        open(f"{out}/{name}.onnx", "wb").write(m.SerializeToString()); np.save(f"{out}/{name}.x.npy", X[:64]); print(name, "ok", [(o.domain or 'ai.onnx', o.version) for o in m.opset_import])
    except Exception as e: print(name, "convert failed", type(e).__name__, str(e)[:300])
