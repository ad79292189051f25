-- The MLflow server's own database, next to tuneloop's (created on the first start only).
CREATE DATABASE mlflow;
