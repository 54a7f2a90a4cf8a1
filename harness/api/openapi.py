"""An OpenAPI 3.1 document of the stub's API, generated from botocore's chime-sdk-voice model.

Paths, parameters, constraints (`pattern`, `min`/`max`) and output shapes are the model's own,
so the document cannot drift from what SDKs send and expect. Error responses are those of the
model that the stub can answer with (not AccessDenied: it has no IAM), plus `EXTRA_ERRORS`;
the stub adds `/ready`.
"""
from __future__ import annotations

import copy
import functools

import botocore.session
from botocore.model import OperationModel, Shape

from ..sma.sip_headers import MAX_VALUE_CHARS, NAME_PATTERN, VALUE_PATTERN
from .errors import ERRORS
from .operations import ROUTES

#: Errors the stub answers with beyond an operation's modeled list: the model gives
#: CreateSipMediaApplicationCall no NotFound, yet an unknown SMA must be answered (UNCONFIRMED).
EXTRA_ERRORS = {"CreateSipMediaApplicationCall": ("NotFoundException",)}
_SCALARS = {"string": "string", "integer": "integer", "long": "integer", "boolean": "boolean",
            "double": "number", "float": "number"}


def _schema(shape: Shape, components: dict) -> dict:
    """A JSON schema for `shape`, with named structures as components."""
    if shape.type_name == "structure":
        if shape.name not in components:
            components[shape.name] = {}  # reserve the name before recursing
            body = {n: m for n, m in shape.members.items() if "location" not in m.serialization}
            schema: dict = {"type": "object",
                            "properties": {n: _schema(m, components) for n, m in body.items()}}
            required = [n for n in shape.required_members if n in body]
            if required:
                schema["required"] = required
            components[shape.name] = schema
        return {"$ref": f"#/components/schemas/{shape.name}"}
    if shape.type_name == "list":
        schema = {"type": "array", "items": _schema(shape.member, components)}
        _bounds(schema, shape, "minItems", "maxItems")
    elif shape.type_name == "map":
        schema = {"type": "object", "additionalProperties": _schema(shape.value, components)}
        _bounds(schema, shape, "minProperties", "maxProperties")
        if shape.name == "SipHeadersMap":  # the service's rules, which the model leaves out
            schema["propertyNames"] = {"pattern": NAME_PATTERN}
            schema["additionalProperties"] = {"type": "string", "maxLength": MAX_VALUE_CHARS,
                                              "pattern": VALUE_PATTERN}
    elif shape.type_name == "timestamp":
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": _SCALARS[shape.type_name]}
        if shape.type_name == "string":
            _bounds(schema, shape, "minLength", "maxLength")
            if "pattern" in shape.metadata:
                schema["pattern"] = shape.metadata["pattern"]
            if shape.enum:
                schema["enum"] = list(shape.enum)
        else:
            _bounds(schema, shape, "minimum", "maximum")
    return schema


def _bounds(schema: dict, shape: Shape, low: str, high: str) -> None:
    if "min" in shape.metadata:
        schema[low] = shape.metadata["min"]
    if "max" in shape.metadata:
        schema[high] = shape.metadata["max"]


def _error_responses(names: list[str]) -> dict:
    by_status: dict[int, list[str]] = {}
    for name in names:
        by_status.setdefault(next(s for s, n in ERRORS.values() if n == name), []).append(name)
    return {str(status): {
        "description": " or ".join(shapes),
        "headers": {"x-amzn-ErrorType": {"required": True,
                                         "schema": {"type": "string", "enum": shapes}},
                    "x-amzn-RequestId": {"required": True, "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    } for status, shapes in sorted(by_status.items())}


def _operation(op: OperationModel, components: dict) -> dict:
    parameters = []
    body_members = {}
    if op.input_shape is not None:
        required = set(op.input_shape.required_members)
        for name, member in op.input_shape.members.items():
            location = member.serialization.get("location")
            if location is None:
                body_members[name] = member
                continue
            parameters.append({"name": member.serialization["name"],
                               "in": {"uri": "path", "querystring": "query"}[location],
                               "required": location == "uri" or name in required,
                               "schema": _schema(member, components)})
    out: dict = {"operationId": op.name, "parameters": parameters}
    if body_members:
        out["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": _schema(op.input_shape, components)}}}
    modeled = [e.name for e in op.error_shapes if e.name in {n for _, n in ERRORS.values()}]
    out["responses"] = {
        str(op.http["responseCode"]): {
            "description": "success",
            "headers": {"x-amzn-RequestId": {"required": True, "schema": {"type": "string"}}},
            "content": {"application/json": {"schema": _schema(op.output_shape, components)}}},
        **_error_responses(modeled + list(EXTRA_ERRORS.get(op.name, ()))),
    }
    out["security"] = [{"sigv4": []}]
    return out


@functools.cache
def _document() -> dict:
    model = botocore.session.get_session().get_service_model("chime-sdk-voice")
    components = {"Error": {
        "type": "object", "required": ["Code", "Message"],
        "properties": {"Code": {"type": "string", "enum": list(model.shape_for("ErrorCode").enum)},
                       "Message": {"type": "string"}}}}
    paths: dict = {}
    for _, _, name, _ in ROUTES:
        op = model.operation_model(name)
        paths.setdefault(op.http["requestUri"], {})[op.http["method"].lower()] = _operation(
            op, components)
    paths["/ready"] = {"get": {"operationId": "Ready", "responses": {
        "200": {"description": "serving", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"status": {"type": "string"}}}}}},
        **_error_responses(["ServiceUnavailableException"])}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "sip-harness chime-sdk-voice stub", "version": model.api_version},
        "servers": [{"url": "http://127.0.0.1"}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"sigv4": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": f"AWS SigV4, signing name {model.signing_name!r}",
            "x-amazon-apigateway-authtype": "awsSigv4"}}},
    }


def openapi_document() -> dict:
    """The OpenAPI 3 document of the served operations (a fresh copy each call)."""
    return copy.deepcopy(_document())
