"""Rasa's response generator, with button payloads left alone.

Rasa fills slot values into a response's text and buttons by treating every
"{...}" as a slot name. The 👍/👎 buttons under each FAQ answer carry entities
as JSON (`/rate_answer{"rating":"up"}`), so every FAQ answer made Rasa log two
full exception records (traceback and locals) and return the payload as it
was. Payloads are messages the member's click sends, never templates; titles
and texts are filled as before.
"""
from typing import Any

from rasa.core.nlg import TemplatedNaturalLanguageGenerator, interpolator
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig


class ResponseGenerator(TemplatedNaturalLanguageGenerator):
    def __init__(self, endpoint_config: EndpointConfig | None = None, domain: Domain | None = None) -> None:
        super().__init__((domain or Domain.empty()).responses)

    def _fill_response(self, response: dict[str, Any], filled_slots: dict[str, Any] | None = None,
                       **kwargs: Any) -> dict[str, Any]:
        buttons = response.pop("buttons", None)
        filled: dict[str, Any] = super()._fill_response(response, filled_slots, **kwargs)
        if buttons is not None:
            values = self._response_variables(filled_slots, kwargs)
            filled["buttons"] = [
                {**button, "title": interpolator.interpolate(button["title"], values)}
                if values and "{" in str(button.get("title", "")) else button
                for button in buttons]
        return filled
