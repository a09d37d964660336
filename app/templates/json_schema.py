"""The JSON schema of a dashboard template (PostHog's `dashboard_template_schema.json`): served by
`dashboard_templates/json_schema/` and checked, with the `jsonschema` library, on
`dashboards/create_from_template_json/`."""

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from app.errors import ValidationFailed

DASHBOARD_TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["template_name", "dashboard_description", "dashboard_filters", "tiles"],
    "properties": {
        "id": {"description": "The id of the dashboard template", "type": "string"},
        "template_name": {"description": "The name of the dashboard template", "type": "string"},
        "team_id": {"description": "The team this dashboard template belongs to", "type": ["number", "null"]},
        "created_at": {"description": "When the dashboard template was created", "type": "string"},
        "image_url": {"description": "The image of the dashboard template", "type": ["string", "null"]},
        "dashboard_description": {
            "description": "The description of the dashboard template",
            "type": "string",
        },
        "dashboard_filters": {"description": "The filters of the dashboard template", "type": "object"},
        "tiles": {
            "description": "The tiles of the dashboard template",
            "type": "array",
            "minItems": 1,
            "items": {"type": "object"},
        },
        "variables": {
            "description": "The variables of the dashboard template",
            "anyOf": [
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name", "type", "default", "description", "required"],
                        "properties": {
                            "id": {"description": "The id of the variable", "type": "string"},
                            "name": {"description": "The name of the variable", "type": "string"},
                            "type": {"description": "The type of the variable", "enum": ["event"]},
                            "default": {"description": "The default value of the variable", "type": "object"},
                            "description": {
                                "description": "The description of the variable",
                                "type": "string",
                            },
                            "required": {
                                "description": "Whether the variable is required",
                                "type": "boolean",
                            },
                        },
                    },
                },
                {"type": "null"},
            ],
        },
        "tags": {
            "description": "The tags of the dashboard template",
            "type": "array",
            "items": {"type": "string"},
        },
    },
}

_VALIDATOR = Draft202012Validator(DASHBOARD_TEMPLATE_SCHEMA)


def validate_template_json(template: Any, attr: str = "template") -> None:
    """A 400 naming the failing place (`template__tiles`, `template__variables__0`) and the reason when
    `template` does not match the schema."""
    error = best_match(_VALIDATOR.iter_errors(template))
    if error is not None:
        path = "__".join([attr, *(str(part) for part in error.absolute_path)])
        raise ValidationFailed(error.message, attr=path)
