"""The benchmark reads the component settings from config.yml itself."""
from benchmark import load_config, pipeline_entry


def test_pipeline_entry_finds_a_component_by_its_full_or_short_name():
    pipeline = load_config()["pipeline"]
    blender = next(c for c in pipeline if c["name"] == "tuanjian.rasa_server.nlu.blender.IntentBlender")
    fallback = next(c for c in pipeline if c["name"] == "FallbackClassifier")
    assert pipeline_entry("IntentBlender") == blender
    assert pipeline_entry("FallbackClassifier") == fallback
