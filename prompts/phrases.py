"""The fixed phrases the model reads or is asked to write, outside the prompt templates."""

from __future__ import annotations

__all__ = [
    "FEEDBACK_INTRO",
    "FEEDBACK_NOT_STATED_BY_ONE",
    "FEEDBACK_NOT_STATED_BY_SEVERAL",
    "FEEDBACK_NO_VALID_SOURCE",
    "FEEDBACK_REMOVED",
    "FEEDBACK_REWRITE",
    "FEEDBACK_SENTENCE",
    "FIRST_ATTEMPT",
    "NO_ANSWER",
    "REASK",
    "SCHEMA_INSTRUCTION",
]

NO_ANSWER = "The documents do not answer this question."
"""The one reply that declines: the answer prompt asks for it word for word; offline answers use it."""

FIRST_ATTEMPT = "None: this is the first attempt."
"""The answer prompt's feedback on a first attempt, when verify has not spoken yet."""

SCHEMA_INSTRUCTION = "Reply with only a JSON object matching this JSON schema:\n"
"""Put before the JSON schema when the server cannot be asked for a schema-shaped reply."""

REASK = "Your reply was not valid: {error}. Reply again with only the corrected JSON object."
"""The one corrective re-ask after a structured reply fails validation; ``error`` says what was wrong."""

FEEDBACK_INTRO = "These sentences of your previous answer are not supported by the sources they cite:"
"""Verify's feedback to the answer retry opens with this, then one FEEDBACK_SENTENCE per sentence."""

FEEDBACK_SENTENCE = '- "{sentence}": {why}.'
"""One unsupported sentence, without its citations, and why it is unsupported."""

FEEDBACK_NOT_STATED_BY_ONE = "cites {markers}, but that source does not state it"
"""Why a sentence that cites one source is unsupported."""

FEEDBACK_NOT_STATED_BY_SEVERAL = "cites {markers}, but those sources do not state it"
"""Why a sentence that cites several sources is unsupported."""

FEEDBACK_NO_VALID_SOURCE = "cites no valid source"
"""Why a sentence is unsupported when none of its citations points at a retrieved passage."""

FEEDBACK_REMOVED = ": removed {removed}"
"""Follows FEEDBACK_NO_VALID_SOURCE and lists the citations removed, each with its reason."""

FEEDBACK_REWRITE = (
    "Write the answer again: keep only what the sources state, cite the source that states each "
    f'sentence, or reply exactly "{NO_ANSWER}" if the sources do not answer the question.'
)
"""Verify's feedback closes with this instruction."""
