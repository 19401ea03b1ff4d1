"""The Kubernetes manifests (deploy/k8s): valid against the Kubernetes schemas
(kubernetes-validate carries them, offline), with the settings the code reads
and the local topology sets, secrets only from a Secret, probes on the routes
the servers really answer, and only the channels published."""
import re

import kubernetes_validate
import pytest
import yaml
from rasa.constants import ENV_CPU_INTER_OP_CONFIG, ENV_CPU_INTRA_OP_CONFIG

from benchmark.local_servers import ENDPOINT_PLUGINS
from tuanjian import settings

KUBERNETES_VERSION = "1.28.0"
MANIFESTS = sorted((settings.ROOT / "deploy" / "k8s").glob("*.yml"))
SECRETS = {settings.ACTION_SERVER_TOKEN, settings.WEB_SESSION_SECRET, settings.THROTTLE_KEY,
           settings.STAFF_API_TOKEN, settings.STAFF_API_TOKENS,
           settings.WECHAT_TOKEN, settings.WECHAT_APP_ID, settings.WECHAT_APP_SECRET,
           settings.WECHAT_ENCODING_AES_KEY, settings.DATABASE_URL, settings.TRACKER_STORE_URL, settings.REDIS_URL}
# Rasa's own names: its tracker store's pool, its lock store's ticket lifetime,
# TensorFlow's threads.
RASA_SETTINGS = {"SQL_POOL_SIZE", "SQL_MAX_OVERFLOW", "TICKET_LOCK_LIFETIME",
                 ENV_CPU_INTRA_OP_CONFIG, ENV_CPU_INTER_OP_CONFIG}


def documents():
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


def by_kind(kind):
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def setting_names():
    """Every environment variable name tuanjian/settings.py defines."""
    return {value for name, value in vars(settings).items()
            if name.isupper() and isinstance(value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", value)}


def test_there_are_manifests():
    assert {p.name for p in MANIFESTS} >= {"rasa.yml", "actions.yml", "services.yml", "configmap.yml", "ingress.yml"}


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_is_valid_kubernetes(doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_refused():
    # Guards the test above: the validator does check.
    broken = by_kind("Deployment")["tuanjian-rasa"]
    broken = {**broken, "spec": {**broken["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_settings_are_the_codes_and_no_secret_is_in_a_configmap():
    config = by_kind("ConfigMap")["tuanjian-settings"]["data"]
    assert set(config) <= setting_names() | RASA_SETTINGS
    assert not set(config) & SECRETS
    assert SECRETS <= setting_names()


def test_both_servers_take_settings_from_the_configmap_and_the_secret():
    for deployment in by_kind("Deployment").values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"configMapRef": "tuanjian-settings", "secretRef": "tuanjian-secrets"}
        assert "env" not in container  # nothing set inline, so nothing secret either


def test_probes_use_the_routes_the_servers_answer():
    # Ready: the REST channel's GET, which fails while no model is loaded
    # (tests/channels/test_rest.py); alive: Rasa's GET /; the action server's /health.
    from actions.server import OPEN_ROUTES

    deployments = by_kind("Deployment")
    rasa = deployments["tuanjian-rasa"]["spec"]["template"]["spec"]["containers"][0]
    actions = deployments["tuanjian-actions"]["spec"]["template"]["spec"]["containers"][0]
    assert rasa["readinessProbe"]["httpGet"]["path"] == "/webhooks/rest/"
    assert rasa["livenessProbe"]["httpGet"]["path"] == "/"
    assert actions["readinessProbe"]["httpGet"]["path"] in OPEN_ROUTES
    assert all("resources" in c and c["resources"]["limits"]["memory"] for c in (rasa, actions))


def test_only_the_channels_are_published():
    ingress = by_kind("Ingress")["tuanjian"]
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [("/webhooks/", "tuanjian-rasa")]
    policy = by_kind("NetworkPolicy")["tuanjian-actions-from-rasa"]
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "tuanjian-rasa"}


def test_endpoints_match_the_local_topology():
    endpoints = yaml.safe_load(by_kind("ConfigMap")["tuanjian-endpoints"]["data"]["endpoints.yml"])
    local = ENDPOINT_PLUGINS
    assert endpoints["tracker_store"]["type"] == local["tracker_store"]
    assert endpoints["lock_store"]["type"] == local["lock_store"]
    assert endpoints["nlg"]["type"] == local["nlg"]
    assert endpoints["action_endpoint"]["url"].endswith(":5055/webhook")


def test_the_lock_lifetime_is_the_local_topologys():
    from benchmark.topology import TICKET_LOCK_LIFETIME

    assert by_kind("ConfigMap")["tuanjian-settings"]["data"]["TICKET_LOCK_LIFETIME"] == TICKET_LOCK_LIFETIME


def test_replicas_use_the_threads_of_the_local_topology():
    from benchmark.topology import REPLICA_THREADS

    config = by_kind("ConfigMap")["tuanjian-settings"]["data"]
    assert {name: config.get(name) for name in REPLICA_THREADS} == REPLICA_THREADS
    assert REPLICA_THREADS[settings.ENCODER_THREADS] == "1"


def test_the_load_test_limits_messages_as_deployed():
    from benchmark.load import MESSAGES_PER_MINUTE

    assert by_kind("ConfigMap")["tuanjian-settings"]["data"]["TUANJIAN_MESSAGES_PER_MINUTE"] == MESSAGES_PER_MINUTE
