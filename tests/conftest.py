"""Suite-wide settings: autolog's own errors raise (AUTOLOG_TESTING=1), MLflow stays local."""

import os

os.environ.setdefault("AUTOLOG_TESTING", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
