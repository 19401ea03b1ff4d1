"""The benchmark reads the component settings from config.yml itself."""
import yaml

from benchmark import ROOT, pipeline_entry


def test_pipeline_entry_finds_a_component_by_its_full_or_short_name():
    pipeline = yaml.safe_load((ROOT / "config.yml").read_text("utf-8"))["pipeline"]
    blender = next(c for c in pipeline if c["name"] == "bot.nlu.blender.IntentBlender")
    fallback = next(c for c in pipeline if c["name"] == "FallbackClassifier")
    assert pipeline_entry("IntentBlender") == blender
    assert pipeline_entry("FallbackClassifier") == fallback
