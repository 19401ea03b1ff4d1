"""Rasa graph component: spaCy EntityRuler over the project's lookup tables.

Lookup tables in the NLU data are named ``<entity>:<canonical value>``, e.g.
``province:广东`` lists 广东, 广东省, 深圳, 广州 …  Every alias becomes an
EntityRuler phrase pattern whose id is the canonical value, so "我在深圳上班"
yields ``province = 广东``.
"""
from __future__ import annotations

from typing import Any, cast

import rasa.shared.utils.io
import spacy
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from spacy.pipeline import EntityRuler

from tuanjian.text import normalize

PATTERNS_FILE = "entity_ruler_patterns.json"
SEPARATOR = ":"


def patterns_from_lookup_tables(
    lookup_tables: list[dict[str, Any]], entity_types: list[str]
) -> list[dict[str, str]]:
    """EntityRuler patterns for the lookup tables named ``<entity>:<value>``."""
    patterns = []
    for table in lookup_tables:
        entity, sep, value = table["name"].partition(SEPARATOR)
        if not sep or entity not in entity_types:
            continue
        for alias in table["elements"]:
            alias = normalize(alias)
            if alias:
                patterns.append({"label": entity, "pattern": alias, "id": value})
    return patterns


def build_ruler(patterns: list[dict[str, Any]]) -> spacy.language.Language:
    # The blank Chinese pipeline segments by character, so a pattern matches
    # wherever its characters occur, whatever jieba would have made of them.
    nlp = spacy.blank("zh")
    ruler = cast(EntityRuler, nlp.add_pipe("entity_ruler"))
    ruler.add_patterns(patterns)
    return nlp


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True
)
class SpacyEntityRulerExtractor(GraphComponent, EntityExtractorMixin):
    """Finds provinces (from cities too), organisation levels and graduate situations."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"entity_types": ["province", "org_level", "graduate_situation"]}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        patterns: list[dict[str, str]] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.patterns = patterns or []
        self._nlp = build_ruler(self.patterns)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SpacyEntityRulerExtractor:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SpacyEntityRulerExtractor:
        with model_storage.read_from(resource) as path:
            patterns = rasa.shared.utils.io.read_json_file(path / PATTERNS_FILE)
        return cls(config, model_storage, resource, patterns)

    def train(self, training_data: TrainingData) -> Resource:
        self.patterns = patterns_from_lookup_tables(
            training_data.lookup_tables, self._config["entity_types"]
        )
        self._nlp = build_ruler(self.patterns)
        with self._model_storage.write_to(self._resource) as path:
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                path / PATTERNS_FILE, self.patterns
            )
        return self._resource

    def extract(self, text: str) -> list[dict[str, Any]]:
        doc = self._nlp(text)
        return [
            {
                "entity": ent.label_,
                "value": ent.ent_id_,
                "start": ent.start_char,
                "end": ent.end_char,
                "confidence_entity": 1.0,
            }
            for ent in doc.ents
        ]

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            found = self.add_extractor_name(self.extract(message.get(TEXT) or ""))
            message.set(
                ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True
            )
        return messages
