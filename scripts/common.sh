# Sourced by the scripts: quiet third-party noise, pick the venv, train when needed.
export TF_CPP_MIN_LOG_LEVEL=2
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export PYTHONWARNINGS="ignore"
export RASA_TELEMETRY_ENABLED=false
export PATH="$PWD/.venv/bin:$PATH"
MODEL=models/tuanjian.tar.gz

# rasa train compares fingerprints of data, domain and config with the last
# model and retrains only what changed; with nothing changed it is a no-op.
train_if_needed() {
  rasa train --domain domain --data data --config config.yml \
    --out models --fixed-model-name tuanjian --quiet "$@"
}

new_secret() {
  python -c 'import secrets; print(secrets.token_urlsafe(32))'
}
